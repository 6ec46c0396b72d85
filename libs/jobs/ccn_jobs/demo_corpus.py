"""A generated corpus of grant-funding web pages for the demo (`make run`) and for tests.

Each page announces a funding programme of an invented funder: amounts, eligibility, deadline,
how to apply, wrapped in the boilerplate a real site has (navigation, cookie banner,
breadcrumb, sidebar, newsletter box, footer) in one of three layouts. Most pages are in
English; pages 1, 3 and 5 of every eight are in German, French and Spanish, so any six
consecutive pages include all four languages.

`grant_pages` is pure: page i depends only on (seed, i), so a smaller corpus is a prefix of a
larger one with the same seed, and every run and every machine sees the same bytes.

Licence: the text and markup here were written for this project and are dedicated to the
public domain (CC0 1.0). All funders, people, addresses and numbers are fictional; the
`.example` domains are reserved and resolve nowhere."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape

import msgspec

from ccn_jobs.extract_text import EXTRACT_TEXT, ExtractTextPayload

LANGUAGE_CYCLE = ("en", "de", "en", "fr", "en", "es", "en", "en")
LAYOUTS = ("semantic", "divs", "facts")


@dataclass(frozen=True, slots=True)
class DemoPage:
    """One page. `language` and `title` are what extraction should find (the H1)."""

    url: str
    html: str
    language: str
    title: str


# month names by language, as the generated pages and samples write dates
MONTH_NAMES: Mapping[str, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
}


@dataclass(frozen=True, slots=True)
class _Language:
    """Everything a page says, in one language. Templates use str.format fields."""

    funder_names: tuple[str, ...]
    programmes: tuple[tuple[str, str], ...]  # (programme name, what it supports)
    months: tuple[str, ...]
    date_format: str
    amount_format: str  # {amount} is the number with a thousands separator
    thousands: str
    url_path: str
    intro: str
    amounts: str
    eligibility_heading: str
    eligibility: tuple[str, ...]
    exclusions_heading: str
    exclusions: tuple[str, ...]
    deadline_heading: str
    deadline: str
    apply_heading: str
    apply: str
    facts: tuple[str, str, str, str]  # labels: funder, amount per project, total, closing date
    nav: tuple[str, ...]
    cookie: str
    cookie_buttons: tuple[str, str]
    breadcrumb: tuple[str, str]
    related_heading: str
    newsletter: str
    newsletter_button: str
    footer_links: tuple[str, ...]
    registration: str
    social: str


_EN = _Language(
    funder_names=(
        "Northbridge Foundation",
        "Harrow Vale Community Trust",
        "Kestrel Charitable Trust",
        "Ashworth Family Foundation",
        "Lindenmoor Fund",
        "Calder Valley Community Foundation",
    ),
    programmes=(
        ("Community Arts Fund", "community arts projects that bring music, theatre and visual art to neighbourhoods"),
        ("Green Neighbourhoods Programme", "local projects that restore habitats, cut waste and help people adapt"),
        ("Learning Futures Grants", "after-school learning, adult literacy and mentoring for young people"),
        ("Healthy Communities Fund", "projects that improve mental health and reduce loneliness among older people"),
        ("Digital Inclusion Grants", "digital skills training and affordable access to devices and connectivity"),
        ("Active Youth Fund", "sport and physical activity for young people who are currently inactive"),
    ),
    months=MONTH_NAMES["en"],
    date_format="{day} {month} {year}",
    amount_format="£{amount}",
    thousands=",",
    url_path="grants",
    intro=(
        "The {funder} invites applications to the {programme}, which supports {purpose}. "
        "We are particularly keen to hear from organisations led by the communities they serve, "
        "and from groups working in places that have received little funding in the past."
    ),
    amounts=(
        "Grants of between {min} and {max} are available for projects lasting up to {months} months. "
        "The total budget for this round is {total}, and we expect to make around {count} awards."
    ),
    eligibility_heading="Who can apply",
    eligibility=(
        "Registered charities with an annual income below £1 million.",
        "Community interest companies and social enterprises with an asset lock.",
        "Constituted voluntary groups with a bank account in the name of the group.",
        "Schools and colleges working in partnership with a local community organisation.",
        "Parish and town councils applying on behalf of a community project.",
    ),
    exclusions_heading="What we will not fund",
    exclusions=(
        "Individuals, or activities that benefit a single person.",
        "Religious or party political activity.",
        "Costs that have already been incurred before a decision is made.",
        "Building work costing more than half of the total project budget.",
    ),
    deadline_heading="Deadline",
    deadline=(
        "The closing date for applications is {deadline} at 5pm. Late applications cannot be accepted. "
        "Our trustees meet in the following month and we will tell every applicant the outcome within twelve weeks."
    ),
    apply_heading="How to apply",
    apply=(
        "Read the guidance notes carefully, then complete the online application form. "
        "If you are unsure whether your project fits, email our grants team at {email} before you apply; "
        "we are happy to talk through ideas at an early stage."
    ),
    facts=("Funder", "Grant size", "Total budget", "Closing date"),
    nav=("Home", "About us", "Our grants", "Stories", "News", "Contact"),
    cookie=(
        "We use cookies to make this website work and to understand how it is used. "
        "Some cookies are optional and are only set if you agree."
    ),
    cookie_buttons=("Accept all cookies", "Manage preferences"),
    breadcrumb=("Home", "Funding"),
    related_heading="Other open programmes",
    newsletter="Sign up to our newsletter for funding news, events and stories from the projects we support.",
    newsletter_button="Subscribe",
    footer_links=("Privacy policy", "Cookie policy", "Accessibility statement", "Terms of use", "Sitemap"),
    registration="Registered charity number {number}. Registered office: {street}, {city}.",
    social="Follow us on social media",
)

_DE = _Language(
    funder_names=(
        "Lindenhof-Stiftung",
        "Bürgerstiftung Rheintal",
        "Stiftung Auenwald",
        "Bergmann-Stiftung für Gemeinsinn",
    ),
    programmes=(
        (
            "Kultur vor Ort",
            "Kunst, Musik und Theater in Stadtteile bringen, in denen es wenige kulturelle Angebote gibt",
        ),
        ("Klima und Umwelt im Quartier", "Lebensräume wiederherstellen, Abfall vermeiden und Nachbarschaften stärken"),
        ("Bildungschancen", "Lernförderung, Leseförderung und Mentoring für Kinder und Jugendliche anbieten"),
        ("Digitale Teilhabe", "älteren Menschen den sicheren Umgang mit digitalen Angeboten ermöglichen"),
    ),
    months=MONTH_NAMES["de"],
    date_format="{day}. {month} {year}",
    amount_format="{amount} Euro",
    thousands=".",
    url_path="foerderung",
    intro=(
        "Die {funder} fördert im Rahmen des Programms „{programme}“ gemeinnützige Projekte, die {purpose}. "
        "Besonders willkommen sind Vorhaben, die von Menschen aus der Nachbarschaft selbst getragen werden "
        "und die bisher kaum Zugang zu Fördermitteln hatten."
    ),
    amounts=(
        "Gefördert werden Vorhaben mit einer Laufzeit von bis zu {months} Monaten. Die Fördersumme beträgt "
        "zwischen {min} und {max} je Projekt. Insgesamt stehen in dieser Runde {total} zur Verfügung; "
        "wir rechnen mit etwa {count} Bewilligungen."
    ),
    eligibility_heading="Wer kann einen Antrag stellen?",
    eligibility=(
        "Gemeinnützige Vereine mit Sitz in Deutschland.",
        "Gemeinnützige Gesellschaften mit beschränkter Haftung und Genossenschaften.",
        "Schulen und Kindertagesstätten gemeinsam mit einem gemeinnützigen Partner.",
        "Kirchengemeinden für Vorhaben, die allen Menschen im Stadtteil offenstehen.",
    ),
    exclusions_heading="Was wir nicht fördern",
    exclusions=(
        "Einzelpersonen und Vorhaben, die nur einer Person zugutekommen.",
        "Maßnahmen, die bereits vor der Bewilligung begonnen haben.",
        "Laufende Personalkosten ohne Bezug zum Projekt.",
    ),
    deadline_heading="Antragsfrist",
    deadline=(
        "Anträge können bis zum {deadline}, 17 Uhr, über unser Antragsportal eingereicht werden. "
        "Über die Förderung entscheidet der Stiftungsrat; alle Antragstellenden erhalten innerhalb von "
        "zwölf Wochen eine Nachricht."
    ),
    apply_heading="So beantragen Sie eine Förderung",
    apply=(
        "Bitte lesen Sie zuerst die Förderrichtlinien und füllen Sie danach das Antragsformular aus. "
        "Wenn Sie unsicher sind, ob Ihr Vorhaben passt, schreiben Sie uns vorab an {email}. "
        "Wir beraten Sie gern schon in der Planungsphase."
    ),
    facts=("Förderer", "Fördersumme", "Gesamtbudget", "Antragsschluss"),
    nav=("Startseite", "Über uns", "Förderung", "Projekte", "Aktuelles", "Kontakt"),
    cookie=(
        "Diese Website verwendet Cookies. Notwendige Cookies sind immer aktiv, "
        "alle anderen setzen wir nur mit Ihrer Einwilligung."
    ),
    cookie_buttons=("Alle akzeptieren", "Einstellungen"),
    breadcrumb=("Startseite", "Förderung"),
    related_heading="Weitere Förderprogramme",
    newsletter="Abonnieren Sie unseren Newsletter mit Neuigkeiten zu Förderprogrammen und Veranstaltungen.",
    newsletter_button="Abonnieren",
    footer_links=("Impressum", "Datenschutz", "Barrierefreiheit", "Cookie-Einstellungen", "Sitemap"),
    registration="Stiftung des bürgerlichen Rechts, Aktenzeichen {number}. Anschrift: {street}, {city}.",
    social="Folgen Sie uns",
)

_FR = _Language(
    funder_names=("Fondation Villemare", "Fondation des Deux Rives", "Fonds Solidaire Auberive"),
    programmes=(
        ("Culture partagée", "rendent la musique, le théâtre et les arts visuels accessibles dans les quartiers"),
        ("Territoires en transition", "restaurent la biodiversité locale et réduisent les déchets"),
        ("Réussir ensemble", "accompagnent la scolarité des enfants et la formation des adultes"),
        ("Inclusion numérique", "aident les personnes éloignées du numérique à gagner en autonomie"),
    ),
    months=MONTH_NAMES["fr"],
    date_format="{day} {month} {year}",
    amount_format="{amount} euros",
    thousands=" ",
    url_path="appels-a-projets",
    intro=(
        "La {funder} lance l'appel à projets « {programme} » afin de soutenir des initiatives qui {purpose}. "
        "Nous accordons une attention particulière aux projets portés par les habitants eux-mêmes "
        "et aux territoires qui ont jusqu'ici peu bénéficié de financements."
    ),
    amounts=(
        "Les projets retenus recevront une subvention comprise entre {min} et {max}, pour une durée maximale "
        "de {months} mois. L'enveloppe globale de cet appel s'élève à {total}, ce qui devrait permettre de "
        "soutenir environ {count} projets."
    ),
    eligibility_heading="Qui peut déposer un dossier ?",
    eligibility=(
        "Les associations déclarées depuis au moins un an.",
        "Les structures de l'économie sociale et solidaire disposant d'un agrément.",
        "Les établissements scolaires associés à une association locale.",
        "Les collectivités de moins de dix mille habitants pour un projet participatif.",
    ),
    exclusions_heading="Ce que nous ne finançons pas",
    exclusions=(
        "Les demandes individuelles.",
        "Les dépenses engagées avant la décision du comité.",
        "Le fonctionnement courant sans lien avec le projet.",
    ),
    deadline_heading="Date limite",
    deadline=(
        "Les dossiers doivent être déposés avant le {deadline} à 17 heures sur notre plateforme en ligne. "
        "Le comité de sélection se réunit le mois suivant et chaque porteur de projet reçoit une réponse "
        "dans un délai de douze semaines."
    ),
    apply_heading="Comment candidater",
    apply=(
        "Lisez attentivement le règlement de l'appel à projets, puis remplissez le formulaire de candidature. "
        "Si vous hésitez sur l'éligibilité de votre projet, écrivez-nous à {email} avant de déposer votre dossier : "
        "notre équipe vous répondra volontiers."
    ),
    facts=("Financeur", "Montant par projet", "Enveloppe totale", "Date limite"),
    nav=("Accueil", "Qui sommes-nous", "Nos appels à projets", "Actualités", "Contact"),
    cookie=(
        "Ce site utilise des cookies pour mesurer l'audience et améliorer votre expérience. "
        "Vous pouvez accepter ou refuser les cookies facultatifs."
    ),
    cookie_buttons=("Tout accepter", "Personnaliser"),
    breadcrumb=("Accueil", "Appels à projets"),
    related_heading="Autres appels en cours",
    newsletter="Inscrivez-vous à notre lettre d'information pour recevoir nos prochains appels à projets.",
    newsletter_button="S'inscrire",
    footer_links=("Mentions légales", "Politique de confidentialité", "Accessibilité", "Gestion des cookies"),
    registration="Fondation reconnue d'utilité publique, numéro {number}. Siège : {street}, {city}.",
    social="Suivez-nous",
)

_ES = _Language(
    funder_names=("Fundación Alcaraván", "Fundación Ribera Norte", "Fundación Tierra Común"),
    programmes=(
        ("Cultura en los barrios", "acercan la música, el teatro y las artes visuales a los barrios"),
        ("Entornos sostenibles", "recuperan espacios naturales y reducen los residuos en su comunidad"),
        ("Aprender juntos", "refuerzan el aprendizaje de niñas, niños y personas adultas"),
        ("Conecta", "ayudan a las personas mayores a utilizar las herramientas digitales con seguridad"),
    ),
    months=MONTH_NAMES["es"],
    date_format="{day} de {month} de {year}",
    amount_format="{amount} euros",
    thousands=".",
    url_path="convocatorias",
    intro=(
        "La {funder} abre la convocatoria «{programme}» para apoyar proyectos que {purpose}. "
        "Daremos prioridad a las iniciativas impulsadas por los propios vecinos y vecinas y a los "
        "territorios que hasta ahora han recibido poca financiación."
    ),
    amounts=(
        "Las ayudas oscilan entre {min} y {max} por proyecto, con una duración máxima de {months} meses. "
        "La dotación total de esta convocatoria es de {total} y prevemos conceder alrededor de {count} ayudas."
    ),
    eligibility_heading="¿Quién puede presentarse?",
    eligibility=(
        "Asociaciones y fundaciones sin ánimo de lucro inscritas en el registro correspondiente.",
        "Cooperativas de iniciativa social.",
        "Centros educativos que trabajen junto a una entidad social del barrio.",
        "Ayuntamientos de menos de diez mil habitantes con un proyecto participativo.",
    ),
    exclusions_heading="Qué no financiamos",
    exclusions=(
        "Solicitudes de personas físicas.",
        "Gastos realizados antes de la resolución de la convocatoria.",
        "Gastos de funcionamiento ordinario que no estén ligados al proyecto.",
    ),
    deadline_heading="Plazo de presentación",
    deadline=(
        "El plazo para presentar las solicitudes termina el {deadline} a las 17:00 horas. "
        "El patronato resolverá la convocatoria en el mes siguiente y todas las entidades recibirán "
        "una respuesta en un plazo máximo de doce semanas."
    ),
    apply_heading="Cómo solicitar la ayuda",
    apply=(
        "Lea con atención las bases de la convocatoria y rellene después el formulario de solicitud. "
        "Si tiene dudas sobre si su proyecto encaja, escríbanos a {email} antes de presentarlo; "
        "nuestro equipo le atenderá con mucho gusto."
    ),
    facts=("Entidad convocante", "Importe por proyecto", "Dotación total", "Fecha límite"),
    nav=("Inicio", "Quiénes somos", "Convocatorias", "Noticias", "Contacto"),
    cookie=(
        "Utilizamos cookies propias y de terceros para analizar el uso de la web. "
        "Puede aceptar todas las cookies o configurar sus preferencias."
    ),
    cookie_buttons=("Aceptar todas", "Configurar"),
    breadcrumb=("Inicio", "Convocatorias"),
    related_heading="Otras convocatorias abiertas",
    newsletter="Suscríbase a nuestro boletín para conocer las próximas convocatorias y actividades.",
    newsletter_button="Suscribirme",
    footer_links=("Aviso legal", "Política de privacidad", "Accesibilidad", "Política de cookies"),
    registration="Fundación inscrita en el Registro de Fundaciones con el número {number}. Sede: {street}, {city}.",
    social="Síguenos en redes sociales",
)

_LANGUAGES = {"en": _EN, "de": _DE, "fr": _FR, "es": _ES}
_ADDRESSES = {
    "en": (("12 Mill Lane", "Northbridge"), ("4 Chapel Row", "Harrow Vale"), ("88 Quay Street", "Calderport")),
    "de": (("Lindenallee 7", "Rheinfeld"), ("Am Markt 3", "Auenstadt")),
    "fr": (("14 rue des Tanneurs", "Villemare"), ("2 quai de la Loire", "Auberive")),
    "es": (("Calle Mayor 21", "Alcaraván"), ("Plaza del Sol 5", "Ribera")),
}


def grant_pages(count: int, seed: int = 0) -> list[DemoPage]:
    """`count` pages; page i depends only on (seed, i)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    return [_page(index, seed) for index in range(count)]


class _JobLine(msgspec.Struct, frozen=True):
    job_type: str
    payload: ExtractTextPayload


def as_jobs_jsonl(pages: Iterable[DemoPage]) -> bytes:
    """One `{"job_type": "extract_text", "payload": {"html": ..., "url": ...}}` per line."""
    encoder = msgspec.json.Encoder()
    lines = (
        encoder.encode(_JobLine(EXTRACT_TEXT.name, ExtractTextPayload(html=page.html, url=page.url))) for page in pages
    )
    return b"".join(line + b"\n" for line in lines)


def _page(index: int, seed: int) -> DemoPage:
    # A string seed is hashed with SHA-512: stable across processes and Python versions.
    rng = random.Random(f"ccn-demo-corpus:{seed}:{index}")  # noqa: S311 - demo text, not security
    code = LANGUAGE_CYCLE[index % len(LANGUAGE_CYCLE)]
    lang = _LANGUAGES[code]
    layout = LAYOUTS[rng.randrange(len(LAYOUTS))]
    funder = rng.choice(lang.funder_names)
    programme, purpose = rng.choice(lang.programmes)
    year = 2026 + rng.randrange(2)
    title = f"{programme} {year}"
    slug = _slug(funder)
    url = f"https://{slug}.example/{lang.url_path}/{index:04d}-{_slug(programme)}"
    email = f"grants@{slug}.example"

    low = rng.choice((1_000, 2_500, 5_000, 10_000))
    high = low * rng.choice((4, 5, 10))
    total = high * rng.choice((10, 15, 20, 25))
    count = total // ((low + high) // 2)
    months = rng.choice((6, 12, 18, 24, 36))
    deadline = lang.date_format.format(day=rng.randint(1, 28), month=rng.choice(lang.months), year=year)
    fields = {
        "funder": funder,
        "programme": title,
        "purpose": purpose,
        "min": _amount(lang, low),
        "max": _amount(lang, high),
        "total": _amount(lang, total),
        "count": str(count),
        "months": str(months),
        "deadline": deadline,
        "email": email,
    }
    eligibility = rng.sample(lang.eligibility, k=3)
    exclusions = rng.sample(lang.exclusions, k=2)
    related = [name for name, _ in lang.programmes if name != programme]
    street, city = rng.choice(_ADDRESSES[code])
    registration = lang.registration.format(number=rng.randint(1_000_000, 9_999_999), street=street, city=city)

    article = [
        f"<h1>{escape(title)}</h1>",
        _p(lang.intro.format(**fields)),
        _p(lang.amounts.format(**fields)),
    ]
    if layout == "facts":
        facts = (escape(funder), f"{escape(fields['min'])}&ndash;{escape(fields['max'])}", escape(fields["total"]))
        cells = zip(lang.facts, (*facts, escape(deadline)), strict=True)
        rows = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in cells)
        article.append(f'<table class="key-facts">{rows}</table>')
    article += [
        f"<h2>{escape(lang.eligibility_heading)}</h2>",
        _list(eligibility),
        f"<h2>{escape(lang.exclusions_heading)}</h2>",
        _list(exclusions),
        f"<h2>{escape(lang.deadline_heading)}</h2>",
        _p(lang.deadline.format(**fields)),
        f"<h2>{escape(lang.apply_heading)}</h2>",
        _p(lang.apply.format(**fields)),
    ]
    parts = _Parts(
        lang=lang,
        funder=funder,
        slug=slug,
        title=title,
        article="\n".join(article),
        related=related,
        registration=registration,
        year=year,
    )
    body = {"semantic": _semantic, "divs": _divs, "facts": _with_breadcrumb}[layout](parts)
    html = (
        f'<!DOCTYPE html>\n<html lang="{code}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)} | {escape(funder)}</title>\n"
        f'<meta name="description" content="{escape(lang.intro.format(**fields).split(". ")[0])}.">\n'
        f'<link rel="canonical" href="{escape(url)}">\n'
        f'<link rel="stylesheet" href="/static/site.css">\n</head>\n<body>\n{body}\n'
        f'<script src="/static/site.js"></script>\n</body>\n</html>\n'
    )
    return DemoPage(url=url, html=html, language=code, title=title)


@dataclass(frozen=True, slots=True)
class _Parts:
    lang: _Language
    funder: str
    slug: str
    title: str
    article: str
    related: list[str]
    registration: str
    year: int


def _nav(parts: _Parts) -> str:
    items = "".join(f'<li><a href="/{_slug(item)}">{escape(item)}</a></li>' for item in parts.lang.nav)
    return f'<nav class="main-menu"><ul>{items}</ul></nav>'


def _cookie_banner(parts: _Parts) -> str:
    accept, manage = parts.lang.cookie_buttons
    return (
        f'<div id="cookie-consent" class="cookie-banner"><p>{escape(parts.lang.cookie)}</p>'
        f"<button>{escape(accept)}</button><button>{escape(manage)}</button></div>"
    )


def _sidebar(parts: _Parts) -> str:
    related = "".join(f'<li><a href="/{_slug(name)}">{escape(name)}</a></li>' for name in parts.related)
    return (
        f"<h3>{escape(parts.lang.related_heading)}</h3><ul>{related}</ul>"
        f'<div class="newsletter"><p>{escape(parts.lang.newsletter)}</p>'
        f'<form action="/newsletter"><input type="email" name="email">'
        f"<button>{escape(parts.lang.newsletter_button)}</button></form></div>"
    )


def _footer_content(parts: _Parts) -> str:
    links = " | ".join(f'<a href="/{_slug(link)}">{escape(link)}</a>' for link in parts.lang.footer_links)
    return (
        f"<p>© {parts.year} {escape(parts.funder)}. {escape(parts.registration)}</p>"
        f"<p>{links}</p><p>{escape(parts.lang.social)}: "
        '<a href="/social/mastodon">Mastodon</a> <a href="/social/linkedin">LinkedIn</a></p>'
    )


def _logo(parts: _Parts) -> str:
    return f'<a class="logo" href="/"><img src="/static/logo.svg" alt="{escape(parts.funder)}"></a>'


def _semantic(parts: _Parts) -> str:
    return (
        f"{_cookie_banner(parts)}\n<header>{_logo(parts)}{_nav(parts)}</header>\n"
        f"<main><article>\n{parts.article}\n</article>\n<aside>{_sidebar(parts)}</aside></main>\n"
        f"<footer>{_footer_content(parts)}</footer>"
    )


def _divs(parts: _Parts) -> str:
    return (
        f'<div id="page"><div class="site-header">{_logo(parts)}{_nav(parts)}</div>\n'
        f'<div id="content" class="site-content"><div class="content-area"><div class="entry-content">\n'
        f"{parts.article}\n</div></div>\n"
        f'<div class="sidebar widget-area">{_sidebar(parts)}</div></div>\n'
        f'<div class="site-footer">{_footer_content(parts)}</div>{_cookie_banner(parts)}</div>'
    )


def _with_breadcrumb(parts: _Parts) -> str:
    home, section = parts.lang.breadcrumb
    crumbs = (
        f'<nav class="breadcrumb"><a href="/">{escape(home)}</a> &rsaquo; '
        f'<a href="/{_slug(section)}">{escape(section)}</a> &rsaquo; <span>{escape(parts.title)}</span></nav>'
    )
    return (
        f"<header>{_logo(parts)}{_nav(parts)}</header>\n{crumbs}\n"
        f'<main id="main-content"><div class="programme">\n{parts.article}\n</div></main>\n'
        f'<aside class="related">{_sidebar(parts)}</aside>\n'
        f"<footer>{_footer_content(parts)}</footer>\n{_cookie_banner(parts)}"
    )


def _p(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _amount(lang: _Language, value: int) -> str:
    return lang.amount_format.format(amount=f"{value:,}".replace(",", lang.thousands))


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
