"""The evaluation set for extract_text on HTML: grant-funding pages as real sites serve them,
each with its ground-truth main text, for token precision, recall and F1 (the `html` bench group).

No labelled set of real article pages with ground-truth text is installable from a package
registry (the ScrapingHub article-extraction benchmark and CleanEval are published as
repositories and dataset downloads, not packages), so, as issue #18 allows, these pages were
written for this project. The main content of a page is a grant programme's page: an
introduction, a key-facts table, headed sections of paragraphs and lists, numbered steps, an
FAQ and a contact line, its sentences drawn from the hand-written wording of
ccn_jobs.nlp_corpus. Around it, each of eight site templates puts the boilerplate its kind of
site really has, modelled on common CMS output (ten templates): a WordPress blog (share buttons, tags, related
posts, comments and a reply form, sidebar widgets), a GOV.UK-style service page (skip link,
phase banner, breadcrumbs, contents list, "Was this page helpful?", related links), a Drupal
foundation site (mega menu, promo cards of other funds, newsletter form), a Bootstrap site
(alert bar, accordion FAQ, print and share toolbar, "last updated"), a Squarespace-style site
(every block a div, announcement bar, Instagram strip), an old table layout (left menu column,
printer-friendly link), a Medium-style blog (reading time, author box, claps, more from the
author, responses), a CMS with tabs (all panels in the DOM, consent modal, chat widget), a news site
(advertisement slots, byline, "Read more" and a promo inside the story, most-read rail) and a
site builder (headings as styled paragraphs, text in spans, every block a positioned div).

The ground truth is the programme's text: headings, paragraphs, list items, table cells, FAQ
questions and answers, one block per line. Not in it: the page title (extract_text returns it
apart), bylines, dates, navigation, banners, widgets, related content, comments, footers.

Split: templates `medium`, `tabs`, `newsroom` and `sitebuilder` are `heldout`: extract_text
was never tuned on them (the first two were scored once before and once after the tuning; the
last two were added after it, to test it on harder markup: a news article with "Read more"
links and a newsletter promo inside its body, and a site builder's page whose headings are
styled paragraphs). The other six are `tuning`. Every page depends only on its index: the same bytes on
every machine.

Licence: written for this project, CC0 1.0. Every funder, person, place and figure is fictional.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from ccn_jobs.demo_corpus import MONTH_NAMES
from ccn_jobs.nlp_corpus import FUNDERS, LABELS, PEOPLE, PLACES, PROGRAMMES, ROLES, TOPICS

PAGES_PER_TEMPLATE = 10
HELDOUT_TEMPLATES = frozenset({"medium", "tabs", "newsroom", "sitebuilder"})

# the grant-opportunity sections of nlp_corpus: title, aims, amounts, eligibility, deadline, how to apply
_TITLES, _AIMS, _AMOUNTS, _ELIGIBILITY, _DEADLINES, _HOW = LABELS["grant_opportunity"][0]

FUNDABLE = (
    "Staff salaries and freelance fees",
    "Volunteer expenses and training",
    "Equipment and small capital items",
    "Venue hire and running costs",
    "Evaluation and learning",
    "Accessibility costs such as interpreters and transport",
    "Activities for participants, including materials",
    "Building repairs and energy-saving improvements",
)
ELIGIBLE = (
    "Registered charities",
    "Community interest companies limited by guarantee",
    "Constituted voluntary and community groups",
    "Parish and town councils",
    "Co-operatives and community benefit societies",
    "Schools working with their wider community",
)
FAQ = (
    (
        "Can we apply if we already hold a grant from you?",
        "Yes, as long as the new project is different and your current grant is on track.",
    ),
    ("Do you fund work outside {place}?", "No. Projects must take place in {place} or benefit people who live there."),
    ("How long will it take to hear back?", "We aim to tell you our decision within twelve weeks of the closing date."),
    (
        "Can individuals apply?",
        "We cannot fund individuals, but a constituted group can apply on behalf of its members.",
    ),
    ("Is match funding required?", "No, but tell us about any other funding you have secured or applied for."),
    ("Can we include overheads?", "Yes. A fair share of your core costs is an eligible part of any budget."),
)

Block = tuple[str, object]  # ("h2" | "p" | "ul" | "ol" | "facts" | "faq", text, items or pairs)


@dataclass(frozen=True, slots=True)
class EvalPage:
    """One page. `truth` is its main text, one block per line."""

    name: str
    split: str  # "tuning" or "heldout"
    template: str
    url: str
    html: str
    title: str
    truth: str


@dataclass(frozen=True, slots=True)
class _Site:
    funder: str
    slug: str
    programme: str
    place: str
    person: str
    role: str
    year: int
    others: tuple[str, ...]
    rng: random.Random


def html_eval_pages(pages_per_template: int = PAGES_PER_TEMPLATE) -> list[EvalPage]:
    pages = []
    for template, render in TEMPLATES.items():
        for index in range(pages_per_template):
            rng = random.Random(f"ccn-html-eval:{template}:{index}")  # noqa: S311 - sample text
            funder = rng.choice(FUNDERS)
            site = _Site(
                funder=funder,
                slug="".join(ch for ch in funder.lower() if ch.isalnum())[:20],
                programme=rng.choice(PROGRAMMES),
                place=rng.choice(PLACES[:5]),
                person=rng.choice(PEOPLE),
                role=rng.choice(ROLES),
                year=rng.choice((2026, 2027)),
                others=tuple(rng.sample(PROGRAMMES, 4)),
                rng=rng,
            )
            title, blocks = _content(site)
            url = f"https://www.{site.slug}.example/funding/{template}-{index}"
            pages.append(
                EvalPage(
                    name=f"{template}-{index:02d}",
                    split="heldout" if template in HELDOUT_TEMPLATES else "tuning",
                    template=template,
                    url=url,
                    html=render(site, title, blocks),
                    title=title,
                    truth="\n".join(_truth_lines(blocks)),
                )
            )
    return pages


def _fill(site: _Site, text: str) -> str:
    rng = site.rng
    low = rng.choice((500, 1_000, 2_500, 5_000))
    months = MONTH_NAMES["en"]
    return text.format(
        funder=site.funder,
        programme=site.programme,
        topic=rng.choice(TOPICS),
        place=site.place,
        person=site.person,
        role=site.role,
        amount=f"£{low * rng.choice((5, 10, 20)):,}",
        amount2=f"£{low:,}",
        date=f"{rng.randint(1, 28)} {rng.choice(months)} {site.year}",
        year=str(site.year),
        year2=str(site.year + 3),
        n=str(rng.randint(8, 140)),
        slug=site.slug,
    )


def _sentences(site: _Site, alternatives: tuple[str, ...], count: int) -> str:
    return " ".join(_fill(site, s) for s in site.rng.sample(alternatives, count))


def _content(site: _Site) -> tuple[str, list[Block]]:
    rng = site.rng
    title = _fill(site, rng.choice(_TITLES))
    blocks: list[Block] = [("p", _sentences(site, _AIMS, 2))]
    if rng.random() < 0.8:
        blocks.append(
            (
                "facts",
                [
                    ("Grant size", _fill(site, "{amount2} to {amount}")),
                    ("Closing date", _fill(site, "{date}, 5pm")),
                    ("Who can apply", "Not-for-profit organisations"),
                    ("Decision time", f"Up to {rng.choice((8, 10, 12))} weeks"),
                ],
            )
        )
    sections: list[list[Block]] = [
        [("h2", "What we fund"), ("p", _sentences(site, _AIMS, 1)), ("ul", rng.sample(FUNDABLE, rng.randint(3, 5)))],
        [("h2", "Who can apply"), ("p", _sentences(site, _ELIGIBILITY, 2)), ("ul", rng.sample(ELIGIBLE, 3))],
        [("h2", "How much you can apply for"), ("p", _sentences(site, _AMOUNTS, 2))],
        [("h2", "Deadlines"), ("p", _sentences(site, _DEADLINES, 1))],
        [("h2", "How to apply"), ("ol", [_fill(site, s) for s in rng.sample(_HOW, 3)])],
    ]
    keep = sorted(rng.sample(range(len(sections)), rng.randint(3, len(sections))))
    for number in keep:
        blocks += sections[number]
    if rng.random() < 0.7:
        blocks += [
            ("h2", "Frequently asked questions"),
            ("faq", [(_fill(site, q), _fill(site, a)) for q, a in rng.sample(FAQ, rng.randint(2, 4))]),
        ]
    blocks += [
        ("h2", "Contact us"),
        (
            "p",
            f"If you have questions about the {site.programme}, email grants@{site.slug}.example or call "
            f"0161 496 0{rng.randint(100, 999)}, Monday to Friday, 9am to 5pm.",
        ),
    ]
    return title, blocks


def _truth_lines(blocks: list[Block]) -> list[str]:
    lines: list[str] = []
    for kind, value in blocks:
        if kind in ("h2", "p"):
            lines.append(str(value))
        elif kind in ("ul", "ol"):
            lines += [str(item) for item in value]  # type: ignore[attr-defined]
        else:  # facts and faq: pairs
            for first, second in value:  # type: ignore[attr-defined]
                lines += [first, second]
    return lines


# --- how each template writes the main blocks ---------------------------------------------------


def _blocks_html(blocks: list[Block], *, faq: str = "dl", facts: str = "table", heading: str = "h2") -> str:
    out = []
    for kind, value in blocks:
        if kind == "h2":
            out.append(f"<{heading}>{escape(str(value))}</{heading}>")
        elif kind == "p":
            out.append(f"<p>{escape(str(value))}</p>")
        elif kind in ("ul", "ol"):
            items = "".join(f"<li>{escape(str(item))}</li>" for item in value)  # type: ignore[attr-defined]
            out.append(f"<{kind}>{items}</{kind}>")
        elif kind == "facts":
            pairs: list[tuple[str, str]] = value  # type: ignore[assignment]
            if facts == "table":
                rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
                out.append(f'<table class="key-facts"><tbody>{rows}</tbody></table>')
            else:
                rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs)
                out.append(f'<dl class="key-facts">{rows}</dl>')
        else:
            pairs = value  # type: ignore[assignment]
            if faq == "details":
                out += [
                    f'<details class="faq"><summary>{escape(q)}</summary><p>{escape(a)}</p></details>' for q, a in pairs
                ]
            elif faq == "accordion":
                for number, (q, a) in enumerate(pairs):
                    out.append(
                        f'<div class="accordion-item"><h3 class="accordion-header"><button class="accordion-button" '
                        f'data-bs-toggle="collapse" data-bs-target="#faq{number}">{escape(q)}</button></h3>'
                        f'<div id="faq{number}" class="accordion-collapse collapse"><div class="accordion-body">'
                        f"<p>{escape(a)}</p></div></div></div>"
                    )
            else:
                out.append("<dl>" + "".join(f"<dt>{escape(q)}</dt><dd>{escape(a)}</dd>" for q, a in pairs) + "</dl>")
    return "\n".join(out)


def _head(title: str, site: _Site) -> str:
    return (
        f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"><title>{escape(title)} | '
        f'{escape(site.funder)}</title><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="/assets/site.css"><script src="/assets/analytics.js" async></script>'
        f"<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments);}}"
        f"gtag('js', new Date());</script></head>"
    )


def _menu(items: tuple[str, ...], cls: str = "menu") -> str:
    return (
        f'<ul class="{cls}">'
        + "".join(f'<li><a href="/{i.lower().replace(" ", "-")}">{escape(i)}</a></li>' for i in items)
        + "</ul>"
    )


NAV = ("Home", "About us", "Funding", "Our impact", "News", "Events", "Contact")
COOKIE_TEXT = (
    "We use cookies to make this site work and to understand how you use it. Some are essential; others help us "
    "improve our services. You can accept all cookies or choose which ones to allow. Read our cookie policy for "
    "more information."
)


def _cookie(cls: str = "cookie-notice") -> str:
    return (
        f'<div id="{cls}" class="{cls}" role="dialog" aria-label="Cookie consent"><p>{COOKIE_TEXT}</p>'
        '<button class="accept">Accept all cookies</button><button class="reject">Reject non-essential</button>'
        '<a href="/cookies">Cookie settings</a></div>'
    )


def _footer(site: _Site) -> str:
    return (
        f'<footer class="site-footer"><div class="footer-widgets"><div class="widget"><h4>Contact</h4><p>'
        f"{escape(site.funder)}, 12 Market Street, {escape(site.place)}. Telephone 0161 496 0000.</p></div>"
        f'<div class="widget"><h4>Quick links</h4>{_menu(("Funding", "Accessibility", "Privacy", "Jobs", "Press"))}'
        f'</div></div><p class="legal">© {site.year} {escape(site.funder)}. Registered charity number 1{site.year}45. '
        "A company limited by guarantee registered in England and Wales.</p></footer>"
    )


def _newsletter() -> str:
    return (
        '<div class="newsletter-signup"><h3>Stay in the loop</h3><p>Sign up to our monthly newsletter to hear '
        "about new funding rounds, events and stories from the groups we support.</p>"
        '<form action="/subscribe"><label for="email">Email address</label><input id="email" type="email">'
        "<button>Subscribe</button></form></div>"
    )


def _related_cards(site: _Site, heading: str) -> str:
    cards = "".join(
        f'<div class="card"><h3><a href="/funding/{i}">{escape(name)}</a></h3><p>Grants for groups across '
        f"{escape(site.place)}. Find out whether your project could be eligible and how to apply.</p></div>"
        for i, name in enumerate(site.others[:3])
    )
    return f'<section class="related-funds"><h2>{escape(heading)}</h2>{cards}</section>'


def _wordpress(site: _Site, title: str, blocks: list[Block]) -> str:
    comments = "".join(
        f'<li class="comment"><div class="comment-author">{escape(name)} says:</div><div class="comment-metadata">'
        f'{day} March {site.year} at 10:{day}2 am</div><p>{escape(text)}</p><a class="reply">Reply</a></li>'
        for name, day, text in (
            ("Janet", 3, "Is there a limit on how many projects one organisation can submit to this round?"),
            ("Community Hub CIC", 5, "Thanks for the webinar last week, really helpful to hear about the process."),
        )
    )
    return (
        f'{_head(title, site)}<body class="post-template-default single single-post">'
        f'<a class="skip-link screen-reader-text" href="#content">Skip to content</a>'
        f'<header id="masthead" class="site-header"><p class="site-title"><a href="/">{escape(site.funder)}</a></p>'
        f'<p class="site-description">Supporting communities since 1962</p>'
        f'<nav id="site-navigation" class="main-navigation">{_menu(NAV)}</nav></header>'
        f'<div id="content" class="site-content"><div id="primary" class="content-area"><main id="main">'
        f'<article class="post type-post"><header class="entry-header"><h1 class="entry-title">{escape(title)}</h1>'
        f'<div class="entry-meta"><span class="posted-on">Posted on {site.year}-02-14</span> '
        f'<span class="byline">by {escape(site.person)}</span></div></header>'
        f'<div class="entry-content">{_blocks_html(blocks)}</div>'
        f'<footer class="entry-footer"><span class="cat-links">Posted in Funding, Grants</span>'
        f'<span class="tags-links">Tagged community, {escape(site.place)}, small grants</span></footer>'
        '<div class="sharedaddy"><h3 class="sd-title">Share this:</h3><ul><li><a>Twitter</a></li>'
        "<li><a>Facebook</a></li><li><a>LinkedIn</a></li><li><a>Email</a></li></ul></div></article>"
        f'<nav class="post-navigation"><div class="nav-previous"><a>Previous post: Meet our new trustees</a></div>'
        f'<div class="nav-next"><a>Next post: Impact report {site.year - 1}</a></div></nav>'
        f'<div id="comments" class="comments-area"><h2 class="comments-title">2 thoughts on "{escape(title)}"</h2>'
        f'<ol class="comment-list">{comments}</ol><div id="respond"><h3>Leave a Reply</h3><p>Your email address will '
        "not be published. Required fields are marked *</p><form><textarea></textarea><button>Post Comment</button>"
        "</form></div></div></main></div>"
        f'<aside id="secondary" class="widget-area"><section class="widget widget_search"><form><input type="search">'
        f'<button>Search</button></form></section><section class="widget"><h2>Recent Posts</h2>'
        f"{_menu(('Our annual review is out', 'Trustee vacancies', 'Funding fair: save the date'))}</section>"
        f'<section class="widget"><h2>Archives</h2>{_menu((f"March {site.year}", f"February {site.year}"))}</section>'
        f"{_newsletter()}</aside></div>{_footer(site)}{_cookie()}</body></html>"
    )


def _govuk(site: _Site, title: str, blocks: list[Block]) -> str:
    contents = "".join(f'<li><a href="#s{n}">{escape(str(v))}</a></li>' for n, (k, v) in enumerate(blocks) if k == "h2")
    return (
        f'{_head(title, site)}<body class="govuk-template__body">'
        f'<a href="#main-content" class="govuk-skip-link">Skip to main content</a>{_cookie("govuk-cookie-banner")}'
        f'<header class="govuk-header"><a class="govuk-header__link">{escape(site.funder)}</a>'
        f"<nav>{_menu(('Funding', 'Guidance', 'Sign in'), 'govuk-header__navigation')}</nav></header>"
        '<div class="govuk-width-container"><div class="govuk-phase-banner"><strong class="govuk-tag">Beta</strong>'
        '<span>This is a new service. Help us improve it and <a href="/feedback">give your feedback</a>.</span></div>'
        f'<nav class="govuk-breadcrumbs"><ol><li><a href="/">Home</a></li><li><a href="/funding">Funding</a></li>'
        f'<li>{escape(site.programme)}</li></ol></nav><main class="govuk-main-wrapper" id="main-content">'
        f'<h1 class="govuk-heading-xl">{escape(title)}</h1><p class="govuk-body-s">From: {escape(site.funder)}<br>'
        f"Published 3 February {site.year}<br>Last updated 10 March {site.year}</p>"
        f'<nav class="gem-c-contents-list"><h2>Contents</h2><ol>{contents}</ol></nav>'
        f'<div class="govuk-govspeak">{_blocks_html(blocks, faq="details")}</div>'
        '<div class="gem-c-print-link"><button>Print this page</button></div>'
        '<div class="gem-c-feedback"><h2>Is this page useful?</h2><button>Yes</button><button>No</button>'
        '<a href="/contact/report">Report a problem with this page</a></div></main>'
        f'<aside class="govuk-related-navigation"><h2>Related content</h2>'
        f"{_menu(tuple(f'{name}: guidance' for name in site.others[:3]))}<h2>Explore the topic</h2>"
        f"{_menu(('Community funding', 'Charities and volunteering'))}</aside></div>"
        '<footer class="govuk-footer"><h2 class="govuk-visually-hidden">Support links</h2>'
        f"{_menu(('Help', 'Privacy', 'Cookies', 'Accessibility statement', 'Contact', 'Terms and conditions'))}"
        "<p>All content is available under the Open Government Licence v3.0, except where otherwise stated</p>"
        "<p>© Crown copyright</p></footer></body></html>"
    )


def _drupal(site: _Site, title: str, blocks: list[Block]) -> str:
    mega = "".join(
        f'<li class="menu-item--expanded"><a>{escape(top)}</a><ul class="menu">'
        + "".join(f"<li><a>{escape(sub)}</a></li>" for sub in subs)
        + "</ul></li>"
        for top, subs in (
            ("Funding", ("Open programmes", "Closed programmes", "How we make decisions", "Grants we have made")),
            ("About", ("Our history", "Trustees", "Staff", "Annual reports", "Jobs")),
            ("Get involved", ("Leave a legacy", "Set up a fund", "Volunteer")),
        )
    )
    return (
        f'{_head(title, site)}<body class="path-node page-node-type-funding-programme">'
        f'<div class="dialog-off-canvas-main-canvas"><header role="banner"><div class="region-header">'
        f'<a href="/" rel="home" class="site-logo">{escape(site.funder)}</a></div><nav class="region-primary-menu">'
        f'<ul class="menu">{mega}</ul></nav>'
        '<form class="search-block-form"><input placeholder="Search"></form></header>'
        f'<div class="hero"><div class="hero__image"><img src="/hero.jpg" alt=""></div><div class="hero__caption">'
        f"Photo: volunteers at a community garden in {escape(site.place)}</div></div>"
        f'<main role="main"><div class="layout-content"><div class="region-content"><article class="node">'
        f'<h1 class="page-title"><span>{escape(title)}</span></h1>'
        f'<div class="field field--name-field-status">Status: Open</div>'
        f'<div class="clearfix text-formatted field field--name-body">{_blocks_html(blocks, facts="dl")}</div>'
        f"</article></div></div>"
        f'<aside class="layout-sidebar-second">{_related_cards(site, "Other funds you might like")}'
        f"{_newsletter()}</aside></main>{_footer(site)}"
        f'<div class="social-links">Follow us: <a>Facebook</a> <a>Instagram</a> <a>LinkedIn</a></div></div>'
        f"{_cookie('eu-cookie-compliance')}</body></html>"
    )


def _bootstrap(site: _Site, title: str, blocks: list[Block]) -> str:
    return (
        f'{_head(title, site)}<body><div class="alert alert-warning text-center" role="alert">Our offices are closed '
        "on bank holidays. Applications can still be submitted online.</div>"
        f'<nav class="navbar navbar-expand-lg"><a class="navbar-brand" href="/">{escape(site.funder)}</a>'
        f'<div class="collapse navbar-collapse">{_menu(NAV, "navbar-nav")}</div></nav>'
        f'<div class="container"><div class="row"><div class="col-lg-8">'
        '<div class="btn-toolbar"><a class="btn">Print</a><a class="btn">Share</a><a class="btn">Download PDF</a></div>'
        f'<h1 class="display-5">{escape(title)}</h1>'
        f'<div class="content">{_blocks_html(blocks, faq="accordion")}</div>'
        f'<p class="text-muted small">Last updated: 12 January {site.year}</p>'
        '<a href="#top" class="back-to-top">Back to top</a></div>'
        f'<div class="col-lg-4"><div class="card"><div class="card-body"><h5 class="card-title">Need help?</h5>'
        '<p class="card-text">Our team can talk you through the process before you start your application.</p>'
        '<a class="btn btn-primary">Get in touch</a></div></div>'
        f"{_related_cards(site, 'You may also be interested in')}"
        f"</div></div></div>{_footer(site)}{_cookie('cookieConsent')}</body></html>"
    )


def _squarespace(site: _Site, title: str, blocks: list[Block]) -> str:
    parts = _blocks_html(blocks).split("\n")
    main = "".join(f'<div class="sqs-block html-block"><div class="sqs-block-content">{p}</div></div>' for p in parts)
    return (
        f'{_head(title, site)}<body class="collection-type-page">'
        '<div class="sqs-announcement-bar"><div class="sqs-announcement-bar-text"><p>New: our impact report '
        "is out now. Read it here.</p></div></div>"
        f'<div class="header"><div class="header-title"><a href="/">{escape(site.funder)}</a></div>'
        f'<div class="header-nav">'
        + "".join(f'<div class="header-nav-item"><a>{escape(i)}</a></div>' for i in NAV)
        + '</div></div><div class="page-section"><div class="content-wrapper"><div class="sqs-layout">'
        f'<div class="sqs-block html-block"><div class="sqs-block-content"><h1>{escape(title)}</h1></div></div>'
        f'{main}<div class="sqs-block button-block"><a class="sqs-block-button-element">Apply now</a></div>'
        "</div></div></div>"
        '<div class="page-section"><div class="sqs-block html-block"><div class="sqs-block-content"><h3>Follow us '
        "on Instagram</h3><p>@" + site.slug + " · 2,314 followers</p></div></div>"
        f'<div class="sqs-block newsletter-block">{_newsletter()}</div></div>'
        f'<div class="footer-sections"><div class="sqs-block-content"><p>{escape(site.funder)} · 12 Market Street · '
        f"{escape(site.place)}</p><p>Registered charity 1{site.year}45</p></div></div>{_cookie()}</body></html>"
    )


def _table_layout(site: _Site, title: str, blocks: list[Block]) -> str:
    left = "".join(f'<tr><td class="navcell"><a>{escape(i)}</a></td></tr>' for i in NAV)
    return (
        f'{_head(title, site)}<body bgcolor="#ffffff"><table width="100%" cellpadding="0" border="0"><tr>'
        f'<td colspan="2" class="banner"><img src="/banner.gif" alt="{escape(site.funder)}"><font size="2">'
        f"Welcome to the {escape(site.funder)} website</font></td></tr><tr>"
        f'<td width="180" valign="top"><table>{left}</table><p class="small">Site visits: 48,212</p></td>'
        f'<td valign="top"><font face="Arial"><h1>{escape(title)}</h1>{_blocks_html(blocks, heading="h3")}'
        '<p><a href="?print=1">Printer-friendly version</a> | <a href="mailto:?">Email this page</a></p>'
        '</font></td></tr><tr><td colspan="2" align="center"><font size="1">'
        f"Copyright © {site.year} {escape(site.funder)}. All rights reserved. | Site map | Disclaimer"
        "</font></td></tr></table></body></html>"
    )


def _medium(site: _Site, title: str, blocks: list[Block]) -> str:
    responses = "".join(
        f'<div class="response"><div class="response-author">{escape(name)}</div><div class="response-date">'
        f"{date}</div><p>{escape(text)}</p><button>{claps} claps</button></div>"
        for name, date, text, claps in (
            ("Mira K.", "Feb 20", "Great to see a funder being this clear about what it will and will not fund.", 12),
            ("Tom B.", "Feb 22", "We applied last year and the feedback we got was genuinely useful. Recommended.", 4),
        )
    )
    return (
        f'{_head(title, site)}<body><div class="metabar"><a href="/">{escape(site.funder)} on Medium</a>'
        '<button>Sign in</button><button>Get started</button></div><article><div class="section-content">'
        f'<h1 class="graf--title">{escape(title)}</h1><div class="postMetaInline"><a>{escape(site.person)}</a>'
        f"<span>Follow</span><span>Feb 14, {site.year}</span><span>·</span><span>6 min read</span></div>"
        f'<section class="section--body">{_blocks_html(blocks)}</section></div>'
        '<footer class="postActions"><button>412 claps</button><button>3 responses</button>'
        "<button>Share</button><button>Bookmark</button></footer></article>"
        f'<div class="authorBox"><h4>Written by {escape(site.person)}</h4><p>{escape(site.role.capitalize())} at '
        f"{escape(site.funder)}. Writing about grant-making, community power and what we learn along the way.</p>"
        f'<button>Follow</button></div><div class="more-from"><h3>More from {escape(site.funder)}</h3>'
        + "".join(
            f'<div class="postItem"><h4>{escape(name)}: what we learned</h4><p>A look back at the first year of the '
            f"programme, the groups it reached and what we would change.</p></div>"
            for name in site.others[:2]
        )
        + f'</div><div class="responses"><h3>Responses (2)</h3>{responses}</div>'
        '<div class="footer">About · Help · Terms · Privacy</div></body></html>'
    )


def _tabs(site: _Site, title: str, blocks: list[Block]) -> str:
    # the main blocks split into tab panels at their headings, all in the DOM as CMSs render them
    panels: list[list[Block]] = [[]]
    for block in blocks:
        if block[0] == "h2" and panels[-1]:
            panels.append([])
        panels[-1].append(block)
    tab_list = "".join(
        f'<li role="presentation"><a role="tab" href="#tab{n}">'
        f"{escape(str(p[0][1]) if p[0][0] == 'h2' else 'Overview')}"
        "</a></li>"
        for n, p in enumerate(panels)
    )
    body = "".join(
        f'<div role="tabpanel" id="tab{n}" class="tab-pane{" active" if n == 0 else ""}">'
        f"{_blocks_html(p, faq='details')}"
        "</div>"
        for n, p in enumerate(panels)
    )
    return (
        f'{_head(title, site)}<body><div id="onetrust-consent-sdk"><div id="onetrust-banner-sdk" role="dialog">'
        f'<h2 id="onetrust-policy-title">Your privacy</h2><p id="onetrust-policy-text">{COOKIE_TEXT} By clicking '
        '"Accept all", you agree to the storing of cookies on your device to enhance site navigation and analyse '
        "site usage.</p><button>Accept all</button><button>Cookie settings</button></div></div>"
        f'<header class="site-header"><div class="logo">{escape(site.funder)}</div><nav>{_menu(NAV)}</nav>'
        '<div class="utility"><a>Log in</a> | <a>Donate</a></div></header>'
        f'<div class="page-body"><ol class="breadcrumb"><li>Home</li><li>Funding</li><li>{escape(site.programme)}</li>'
        f'</ol><div class="main-column"><h1>{escape(title)}</h1><ul class="nav nav-tabs" role="tablist">{tab_list}</ul>'
        f'<div class="tab-content">{body}</div></div><div class="side-column">'
        f'<div class="promo"><h3>Funding finder</h3><p>Answer three questions to see every fund open to your '
        "organisation right now.</p><a>Start</a></div></div></div>"
        '<div id="chat-widget" class="chat"><div class="chat-header">Chat with us</div><p>Hi there! Have a question '
        'about applying? Our team is online Monday to Friday.</p><input placeholder="Type your message"></div>'
        f"{_footer(site)}</body></html>"
    )


def _newsroom(site: _Site, title: str, blocks: list[Block]) -> str:
    # a news site's article: inline "Read more" links and a newsletter promo inside the body
    body = _blocks_html(blocks).split("\n")
    promo = (
        '<div class="inline-promo"><p><strong>Get the funding briefing.</strong> Every Friday, the week\'s new '
        'grants and deadlines in your inbox.</p><a class="button">Sign me up</a></div>'
    )
    read_more = (
        f'<p class="read-more"><strong>Read more:</strong> <a href="/news/1">{escape(site.others[0])} reopens</a></p>'
    )
    middle = len(body) // 2
    body = [*body[:2], read_more, *body[2:middle], promo, *body[middle:]]
    most_read = "".join(
        f"<li><a>{escape(headline)}</a></li>"
        for headline in (
            f"Council budget cuts hit {site.place} youth services",
            "Ten tips for a stronger grant application",
            f"{site.others[1]} announces new chair",
        )
    )
    return (
        f'{_head(title, site)}<body><div class="ad-slot ad-leaderboard"><span>Advertisement</span></div>'
        '<header class="masthead"><a class="brand">Third Sector Daily</a>'
        f"<nav>{_menu(('News', 'Funding', 'Jobs', 'Events', 'Opinion'))}</nav>"
        '<a class="subscribe">Subscribe</a></header><main><article class="story">'
        f'<div class="kicker">Funding</div><h1 class="headline">{escape(title)}</h1>'
        f'<div class="byline">By {escape(site.person)} · {site.year}-02-11 · 4 comments</div>'
        f'<div class="story-body">{"".join(body)}</div>'
        f'<div class="topics">Topics: <a>Grants</a> <a>{escape(site.place)}</a> <a>Community</a></div></article>'
        f'<aside class="rail"><h2>Most read</h2><ol>{most_read}</ol>'
        '<div class="ad-slot ad-mpu"><span>Advertisement</span></div></aside></main>'
        "<footer><p>Third Sector Daily is published by Example Media Ltd.</p>"
        f"{_menu(('About us', 'Advertise', 'Contact', 'Privacy', 'Terms'))}</footer>{_cookie()}</body></html>"
    )


def _sitebuilder(site: _Site, title: str, blocks: list[Block]) -> str:
    # a site builder's page: headings written as styled paragraphs, text in spans, every block
    # a positioned div
    out = []
    for number, (kind, value) in enumerate(blocks):
        if kind == "h2":
            inner = (
                f'<p class="font_2" style="font-size:28px"><span style="color:#2F2E2E">{escape(str(value))}</span></p>'
            )
        elif kind == "p":
            inner = f'<p class="font_8"><span style="font-size:16px">{escape(str(value))}</span></p>'
        elif kind in ("ul", "ol"):
            items = "".join(f'<li><p class="font_8"><span>{escape(str(item))}</span></p></li>' for item in value)  # type: ignore[attr-defined]
            inner = f'<ul class="font_8">{items}</ul>'
        else:
            inner = "".join(
                f'<p class="font_8"><span style="font-weight:bold">{escape(first)}</span></p>'
                f'<p class="font_8"><span>{escape(second)}</span></p>'
                for first, second in value  # type: ignore[attr-defined]
            )
        out.append(f'<div id="comp-{number:04d}" class="wixui-rich-text" data-testid="richTextElement">{inner}</div>')
    return (
        f'{_head(title, site)}<body><div id="SITE_CONTAINER"><div id="main_MF"><header id="SITE_HEADER">'
        f'<div class="wixui-rich-text"><p class="font_0"><span>{escape(site.funder.upper())}</span></p></div>'
        + "".join(f'<div class="wixui-dropdown-menu__item"><p>{escape(i)}</p></div>' for i in NAV)
        + '</header><main id="PAGES_CONTAINER"><section class="wixui-section">'
        f'<div class="wixui-rich-text"><h1 class="font_0"><span>{escape(title)}</span></h1></div>{"".join(out)}'
        '<div class="wixui-button"><span class="wixui-button__label">Book a call with our team</span></div>'
        '</section></main><footer id="SITE_FOOTER"><div class="wixui-rich-text"><p class="font_9">'
        f"<span>© {site.year} by {escape(site.funder)}. Proudly created with a website builder.</span></p></div>"
        '<div class="wixui-rich-text"><p class="font_9"><span>Join our mailing list</span></p></div>'
        '<div class="wixui-rich-text"><p class="font_9"><span>Never miss an update</span></p></div></footer>'
        f"</div></div>{_cookie('consent-banner-root')}</body></html>"
    )


TEMPLATES: dict[str, Callable[[_Site, str, list[Block]], str]] = {
    "wordpress": _wordpress,
    "govuk": _govuk,
    "drupal": _drupal,
    "bootstrap": _bootstrap,
    "squarespace": _squarespace,
    "table": _table_layout,
    "medium": _medium,
    "tabs": _tabs,
    "newsroom": _newsroom,
    "sitebuilder": _sitebuilder,
}
