"""The labelled documents the classifier is trained on and both NLP job types are measured
against: short pages of the kinds a grant-funding crawl meets, in seven classes.

Each class is a list of sections (a title, what the programme funds, who may apply, the
deadline, ...) and each section a list of alternative sentences, written by hand and filled
with invented funders, programmes, places, people, amounts and dates. A document takes one
alternative from most sections of its class. The split is by wording, not only by document:
a training document uses only the even-numbered alternatives of every section and a held-out
document only the odd-numbered ones, so the held-out figures measure sentences the model never
saw. The same holds for the entity evaluation set (`entity_documents`), whose gold spans are
recorded as the slots are filled.

`python -m ccn_jobs.nlp_corpus` writes the files under ccn_jobs/data/ that the repository keeps
(`classify_sample.jsonl`, `entity_eval.jsonl`); those files, not this module, are the sample:
an administrator may append real labelled documents to them and train again.

Licence: written for this project, CC0 1.0. Every funder, person, place and figure is fictional.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE_PATH = DATA_DIR / "classify_sample.jsonl"
ENTITY_EVAL_PATH = DATA_DIR / "entity_eval.jsonl"

TRAIN_PER_LABEL = 50
HELDOUT_PER_LABEL = 20
ENTITY_DOCUMENTS = 120

FUNDERS = (
    "Northbridge Foundation",
    "Harrow Vale Community Trust",
    "Kestrel Charitable Trust",
    "Ashworth Family Foundation",
    "Calder Valley Community Foundation",
    "Marlowe Arts Council",
    "Brightwater Trust",
    "Pemberton Foundation",
    "Eastfield Community Foundation",
    "Silverdale Charitable Trust",
    "Ortega Family Foundation",
    "Greyhaven Heritage Trust",
)
FUNDERS_INTL = ("Lindenhof-Stiftung", "Bürgerstiftung Rheintal", "Fondation Villemare", "Fundación Ribera Norte")
PROGRAMMES = (
    "Community Arts Fund",
    "Green Neighbourhoods Programme",
    "Learning Futures Grants",
    "Healthy Communities Fund",
    "Digital Inclusion Grants",
    "Active Youth Fund",
    "Heritage Horizons Programme",
    "Rural Resilience Fund",
    "Open Doors Small Grants",
    "Climate Action Challenge",
    "Young Researchers Fellowship",
    "Neighbourhood Food Fund",
)
TOPICS = (
    "loneliness among older people",
    "youth unemployment",
    "river pollution",
    "digital exclusion",
    "food poverty",
    "access to the arts",
    "adult literacy",
    "local heritage",
    "mental health",
    "homelessness",
)
PLACES = ("Northbridge", "Harrow Vale", "Calderport", "Eastfield", "Silverdale", "the North West", "rural Wales")
PEOPLE = ("Amara Okafor", "Daniel Whitcombe", "Priya Raman", "Tomasz Nowak", "Helen Fairbairn", "Samuel Adeyemi")
ROLES = ("chief executive", "director of grants", "chair of trustees", "head of programmes")
MONTHS = (
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
)

# label -> sections -> alternative sentences. Slots: {funder} {programme} {topic} {place}
# {person} {role} {amount} {amount2} {date} {year} {n}
Sections = tuple[tuple[str, ...], ...]

GRANT_OPPORTUNITY: Sections = (
    (
        "{programme} {year}: call for applications",
        "Apply now: {programme}",
        "{programme} is open for applications",
        "Funding available: {programme} {year}",
        "{funder} opens {programme} round {n}",
        "Grants for community groups: {programme}",
        "Call for proposals: {programme}",
        "{programme}: apply for a grant of up to {amount}",
    ),
    (
        "The {funder} invites applications to the {programme}, which supports projects tackling {topic}.",
        "We are now accepting applications for grants that help communities in {place} respond to {topic}.",
        "This fund supports charities and community groups working on {topic}.",
        "Our new funding round is aimed at organisations that want to make a lasting difference to {topic}.",
        "{funder} is inviting proposals from not-for-profit organisations addressing {topic} in {place}.",
        "Through the {programme} we offer grants to grassroots groups tackling {topic}.",
        "The programme funds practical projects that reduce {topic} and build stronger communities.",
        "Applications are welcome from groups that want to pilot new approaches to {topic}.",
    ),
    (
        "Grants of between {amount2} and {amount} are available for projects lasting up to two years.",
        "You can apply for up to {amount} towards running costs, salaries and equipment.",
        "We expect to make around {n} awards of up to {amount} each.",
        "The total budget for this round is {amount}, with individual awards starting at {amount2}.",
        "Awards are usually between {amount2} and {amount}, and we can fund up to 80% of project costs.",
        "Funding of up to {amount} per year is available for a maximum of three years.",
        "Small grants of up to {amount2} are decided within six weeks; larger grants up to {amount} take longer.",
        "Match funding is not required for requests under {amount}.",
    ),
    (
        "Registered charities, community interest companies and constituted voluntary groups are eligible.",
        "To be eligible, your organisation must have an annual income below {amount} and a bank account.",
        "We cannot fund individuals, political activity or work that has already taken place.",
        "Applicants must be based in {place} or deliver their project there.",
        "Schools, parish councils and social enterprises with an asset lock may also apply.",
        "Organisations led by the communities they serve are particularly encouraged to apply.",
        "Eligible applicants are not-for-profit organisations with at least one year of accounts.",
        "We will not fund general appeals, sponsorship or retrospective costs.",
    ),
    (
        "The closing date for applications is {date} at 5pm.",
        "Deadline: {date}. Late applications will not be considered.",
        "Applications must be submitted by {date}.",
        "The fund closes on {date}; decisions will be made within twelve weeks.",
        "Submit your proposal before midnight on {date}.",
        "This round is open until {date}, or until the budget has been committed.",
        "Expressions of interest are due by {date}, with full proposals invited afterwards.",
        "We review applications on a rolling basis; the final deadline is {date}.",
    ),
    (
        "Read the guidance notes, check the eligibility criteria and complete the online application form.",
        "To apply, download the application pack and email it to our grants team.",
        "Please contact us before applying if you are unsure whether your project fits our criteria.",
        "Apply through our online portal; you will need your latest accounts and a project budget.",
        "Shortlisted applicants will be invited to a conversation with a grants officer.",
        "Register on the applicant portal to start your application and save it as you go.",
        "Our eligibility checker takes five minutes and tells you whether to apply.",
        "A webinar about how to apply will be recorded and posted on this page.",
    ),
)
GRANT_OPPORTUNITY_INTL: Sections = (
    (
        "Förderprogramm {programme}: Jetzt bewerben",
        "Appel à projets {programme} {year}",
        "Convocatoria de ayudas {programme} {year}",
        "Ausschreibung: {programme}",
        "Appel à candidatures : {programme}",
        "Abierta la convocatoria {programme}",
    ),
    (
        "Die {funder} fördert gemeinnützige Projekte, die sich mit {topic} befassen. Anträge sind bis zum {date} möglich.",
        "La {funder} lance un appel à projets pour soutenir les associations. Les dossiers doivent être déposés avant le {date}.",
        "La {funder} abre una convocatoria de ayudas para entidades sin ánimo de lucro. El plazo de solicitud termina el {date}.",
        "Gefördert werden Vorhaben mit einer Fördersumme von bis zu {amount}. Antragsschluss ist der {date}.",
        "Les projets retenus recevront une subvention pouvant atteindre {amount}. Date limite de dépôt : {date}.",
        "Las ayudas pueden alcanzar {amount} por proyecto. Las solicitudes se presentan en la sede electrónica.",
    ),
    (
        "Antragsberechtigt sind eingetragene Vereine und gemeinnützige Organisationen.",
        "Sont éligibles les associations loi 1901 et les structures de l'économie sociale et solidaire.",
        "Pueden presentarse asociaciones y fundaciones inscritas en el registro correspondiente.",
        "Bitte reichen Sie Ihren Antrag über unser Online-Portal ein.",
        "Le formulaire de candidature est disponible en ligne.",
        "Lea con atención las bases de la convocatoria antes de presentar su solicitud.",
    ),
)
FUNDER_PROFILE: Sections = (
    (
        "About the {funder}",
        "Who we are",
        "Our history",
        "About us: {funder}",
        "{funder}: our mission and values",
        "How we work",
        "Our trustees and staff",
        "Our approach to funding",
    ),
    (
        "The {funder} is an independent grant-making charity founded in {year} by a local family business.",
        "We were established in 1952 to support people and places in {place}.",
        "{funder} is a registered charity that works to improve the lives of people across {place}.",
        "Since our founding we have given more than {amount} to thousands of local causes.",
        "Our endowment was created from the proceeds of a family firm and is invested ethically.",
        "We are one of the largest independent funders in {place}, giving around {amount} each year.",
        "The trust was set up under the will of its founder, a mill owner with a lifelong interest in education.",
        "We are a community foundation: we manage funds on behalf of donors and make grants in their names.",
    ),
    (
        "Our mission is to build fairer, more connected communities where everyone can thrive.",
        "We believe that local people know best what their neighbourhoods need.",
        "Our strategy focuses on three priorities: {topic}, access to the arts and strong local organisations.",
        "We take a long-term, relational approach and often fund the same organisations for many years.",
        "Our values are openness, humility and a commitment to equity in everything we fund.",
        "We aim to be a trusted partner to the groups we support, not only a source of money.",
        "We prioritise work with communities that have historically been overlooked by funders.",
        "Our funding strategy for {year} to {year2} was shaped by conversations with over 300 local groups.",
    ),
    (
        "The foundation is governed by a board of nine trustees who meet four times a year.",
        "Our trustees are volunteers with experience in finance, community work and the law.",
        "{person}, our {role}, leads a small team of six staff based in {place}.",
        "Our annual report and accounts are published on the Charity Commission website.",
        "We are a member of the Association of Charitable Foundations and publish our grants data openly.",
        "The staff team is led by {person}, who joined as {role} in 2019.",
        "Our investment policy excludes fossil fuels and tobacco.",
        "A full list of trustees and their declared interests is available on request.",
    ),
    (
        "We do not accept unsolicited applications; we invite organisations to apply.",
        "Most of our grants are made through open programmes, which are listed on our funding page.",
        "Last year we awarded {n} grants totalling {amount}.",
        "Past grantees include youth clubs, food banks, theatres and environmental groups.",
        "We also offer non-financial support such as mentoring and training for grantees.",
        "Our grants database lists every award we have made since 2010.",
        "Alongside grants we make social investments in community businesses.",
        "We work in partnership with local authorities and other funders in {place}.",
    ),
)
FUNDER_PROFILE_INTL: Sections = (
    (
        "Über uns – {funder}",
        "Qui sommes-nous ? La {funder}",
        "Quiénes somos: {funder}",
        "Die Stiftung",
        "Notre histoire",
        "Nuestra historia",
    ),
    (
        "Die {funder} wurde 1987 gegründet und setzt sich für eine lebendige Zivilgesellschaft ein.",
        "La {funder} est une fondation reconnue d'utilité publique créée en 1991.",
        "La {funder} es una entidad sin ánimo de lucro fundada en 1985 para apoyar la cohesión social.",
        "Der Stiftungsrat besteht aus sieben ehrenamtlichen Mitgliedern.",
        "Notre conseil d'administration se réunit trois fois par an.",
        "Nuestro patronato está formado por personas del ámbito social y empresarial.",
    ),
)
NEWS: Sections = (
    (
        "{funder} awards {amount} to {n} local projects",
        "New fund to tackle {topic} announced",
        "Grants boost for community groups in {place}",
        "{n} organisations share {amount} in latest funding round",
        "Funder pledges {amount} to fight {topic}",
        "Charities in {place} welcome new support",
        "{funder} appoints new {role}",
        "Record year for community giving in {place}",
    ),
    (
        "The {funder} announced today that {n} groups will share {amount} in its latest round of grants.",
        "A new programme worth {amount} was launched on Tuesday to tackle {topic}, the {funder} said.",
        "Community groups across {place} are celebrating after receiving grants from the {funder}.",
        "The awards, announced at an event in {place} last night, will fund projects over the next three years.",
        "Local charities have welcomed the news, saying demand for their services has never been higher.",
        "The announcement follows a year in which applications to the fund doubled.",
        "The foundation has appointed {person} as its new {role}, it was announced this week.",
        "Figures published on Monday show that grant-giving in {place} rose by 12% last year.",
    ),
    (
        '"This funding will make a real difference to people\'s lives," said {person}, {role} of the {funder}.',
        '{person}, the {funder}\'s {role}, said: "We were overwhelmed by the quality of the applications."',
        "Speaking at the launch, {person} said the fund would prioritise groups led by local people.",
        '"We are thrilled," said a spokesperson for one of the recipients, a youth club in {place}.',
        "{person} told reporters that the foundation planned to double its giving by {year}.",
        "In a statement, the trust said it had listened to feedback from grantees.",
        "Local MP {person} praised the initiative as a model for other regions.",
        "Critics say the money is welcome but falls short of what is needed to address {topic}.",
    ),
    (
        "Recipients include a community garden, a food bank and a theatre group for young carers.",
        "The largest award, of {amount2}, went to a partnership of three youth organisations.",
        "The funding comes from the foundation's endowment and a legacy from a local benefactor.",
        "Previous rounds have supported more than 400 projects since the fund began in 2015.",
        "A full list of the successful projects has been published on the foundation's website.",
        "The news comes as councils in the region face further cuts to their budgets.",
        "The trust said it would publish an evaluation of the programme next year.",
        "Organisations that were unsuccessful will be offered feedback and support to reapply.",
    ),
)
NEWS_INTL: Sections = (
    (
        "{funder} vergibt {amount} an {n} Projekte",
        "La {funder} soutient {n} associations",
        "La {funder} concede {amount} a {n} proyectos",
        "Neue Förderung für Vereine in der Region",
        "Les lauréats de l'appel à projets annoncés",
        "Conoce los proyectos seleccionados",
    ),
    (
        "Wie die Stiftung am Dienstag mitteilte, erhalten {n} Vereine eine Förderung. Die Vorsitzende {person} sagte, man sei beeindruckt.",
        "La fondation a annoncé mardi la liste des associations lauréates, a déclaré {person}, sa directrice.",
        "La fundación anunció ayer los proyectos seleccionados, según declaró {person}, su directora.",
        "Die Preisverleihung fand gestern Abend im Rathaus statt.",
        "La cérémonie de remise des prix s'est tenue hier soir à la mairie.",
        "El acto de entrega tuvo lugar ayer por la tarde en el ayuntamiento.",
    ),
)
EVENT: Sections = (
    (
        "Funding fair {year}: meet the funders",
        "Webinar: how to apply to the {programme}",
        "Free workshop: writing a winning grant application",
        "Information session for {programme} applicants",
        "Community networking breakfast in {place}",
        "Online drop-in: ask us anything about funding",
        "Conference: the future of local philanthropy",
        "Training day: budgeting for your project",
    ),
    (
        "Join us on {date} from 10am to 12pm for an online session with our grants team.",
        "The event takes place on {date} at the Town Hall, {place}, doors open at 9.30am.",
        "This free workshop runs on {date}, 2pm to 4pm, on Zoom.",
        "Date and time: {date}, 6pm to 8pm. Venue: Community Centre, {place}.",
        "The conference will be held on {date} at the Exchange, {place}.",
        "We will meet on {date}; refreshments and lunch are provided.",
        "Sessions run every Thursday in spring, starting on {date}.",
        "The webinar lasts one hour and will be recorded for those who cannot attend live.",
    ),
    (
        "Places are limited, so please book your free ticket through Eventbrite.",
        "Register now to reserve your place; the joining link will be emailed the day before.",
        "Tickets cost £15, with free places for volunteers and small groups.",
        "Booking is essential. Please tell us about any access requirements when you register.",
        "Spaces are allocated on a first come, first served basis.",
        "Reserve your seat by filling in the short registration form below.",
        "The venue is step-free and has a hearing loop.",
        "If you can no longer attend, please cancel your booking so someone else can take your place.",
    ),
    (
        "Speakers include {person}, {role} of the {funder}, and representatives of local charities.",
        "The agenda covers eligibility, budgets, measuring outcomes and common mistakes.",
        "You will have the chance to meet funders one to one and ask questions about your ideas.",
        "The session will include a presentation followed by a question and answer panel.",
        "Our keynote speaker is {person}, who will talk about trust-based philanthropy.",
        "Workshops in the afternoon will cover storytelling, impact measurement and partnership working.",
        "There will be time for networking over coffee after the talks.",
        "Bring your project idea and leave with a plan for your application.",
    ),
)
REPORT: Sections = (
    (
        "Annual report and accounts {year}",
        "Impact report {year}: what we learned",
        "Evaluation of the {programme}",
        "Research findings: the state of {topic} in {place}",
        "Our year in numbers",
        "Grant-making review {year}",
        "Learning report: five years of the {programme}",
        "Insight briefing: funding for {topic}",
    ),
    (
        "This report summarises the activities of the {funder} during the financial year ending 31 March {year}.",
        "The evaluation was carried out by an independent research team between 2022 and {year}.",
        "In this report we set out what our grants achieved and what we would do differently.",
        "The findings draw on interviews with 45 grantees and a survey of 600 participants.",
        "This briefing brings together data from our grants and published research on {topic}.",
        "Our methodology combined a review of monitoring data with six in-depth case studies.",
        "The review looks at who applied, who was funded and how decisions were made.",
        "This learning report is written for funders, grantees and policy makers.",
    ),
    (
        "Key findings: 78% of projects met or exceeded their targets, and 9 in 10 grantees reported increased confidence.",
        "Total income for the year was {amount}, and charitable expenditure was {amount2}.",
        "The data show that smaller grants reached communities that larger funders rarely reach.",
        "Figure 3 shows the distribution of awards by region and size.",
        "Table 2 sets out income, expenditure and reserves compared with the previous year.",
        "We found that unrestricted funding was the single most valued feature of the programme.",
        "The evaluation identified three areas for improvement in how we communicate decisions.",
        "Outcomes were strongest where projects had been co-designed with participants.",
    ),
    (
        "Download the full report (PDF, 2.4 MB).",
        "The full report, including appendices and methodology, is available as a PDF.",
        "Recommendations for funders are set out in section 5.",
        "We are grateful to everyone who took part in the research.",
        "The accounts have been prepared in accordance with the Charities SORP.",
        "An easy-read summary of this report is also available.",
        "Conclusions and next steps are discussed in the final chapter.",
        "Read the executive summary or download the data tables.",
    ),
)
JOB_POSTING: Sections = (
    (
        "Job vacancy: Grants Officer",
        "We're hiring: Programme Manager (fixed term)",
        "Vacancy: Finance and Operations Assistant",
        "Join our team as Head of Grants",
        "Careers: Communications Officer, part time",
        "Job opportunity: Learning and Evaluation Lead",
        "Recruiting now: Community Development Worker",
        "Trustee vacancy: Treasurer",
    ),
    (
        "Salary: £28,000 to £32,000 per annum, pro rata for part-time hours.",
        "Salary {amount2} per year plus a generous pension contribution and 28 days' annual leave.",
        "This is a full-time, permanent post based in our {place} office with hybrid working.",
        "Hours: 21 hours per week, with flexibility over which days you work.",
        "The role is a 12-month fixed-term contract with the possibility of extension.",
        "We offer flexible working, a wellbeing allowance and paid volunteering days.",
        "Contract: permanent, 35 hours per week, salary £41,500.",
        "This is a voluntary, unpaid role; reasonable expenses are reimbursed.",
    ),
    (
        "You will manage a portfolio of grants, assess applications and build relationships with grantees.",
        "The successful candidate will lead our programme team and report to the {role}.",
        "You will have experience of financial administration and a keen eye for detail.",
        "We are looking for someone with excellent writing skills and experience of social media.",
        "The post holder will design and deliver our approach to learning and evaluation.",
        "Responsibilities include due diligence checks, monitoring reports and panel papers.",
        "Experience of working in the voluntary sector is essential; knowledge of grant-making is desirable.",
        "You will support community groups to develop their skills and access funding.",
    ),
    (
        "To apply, send your CV and a covering letter to recruitment@{slug}.example by {date}.",
        "Closing date for applications: {date}. Interviews will be held the following week.",
        "Please complete the application form and equal opportunities monitoring form.",
        "We particularly welcome applications from candidates from under-represented backgrounds.",
        "Download the job description and person specification below.",
        "We are a Disability Confident employer and guarantee an interview to disabled candidates who meet the essential criteria.",
        "For an informal conversation about the role, contact {person}.",
        "No agencies, please.",
    ),
)
IRRELEVANT: Sections = (
    (
        "Cookie policy",
        "Page not found",
        "Sign in to your account",
        "Summer sale: up to 50% off garden furniture",
        "Easy lemon drizzle cake recipe",
        "Index funds explained: how to start investing",
        "Match report: {place} Rovers 2-1 Eastfield Town",
        "Weekend weather forecast",
        "Crowdfunding campaign: the smart bike lock",
        "Installing the command-line tools",
        "Ten things to do in {place} this summer",
        "Terms and conditions of sale",
    ),
    (
        "We use cookies to remember your preferences and to measure how visitors use our website.",
        "Sorry, the page you are looking for has moved or no longer exists.",
        "Enter your email address and password to continue, or reset your password.",
        "Our best-selling rattan sofa set is now reduced, with free delivery on orders over £50.",
        "Cream the butter and sugar, then beat in the eggs one at a time and fold in the flour.",
        "An index fund tracks a market such as the FTSE 100 and usually charges lower fees than an active fund.",
        "A late header from the captain secured all three points in front of a crowd of 4,000.",
        "Expect sunny spells on Saturday with highs of 21 degrees, turning wetter on Sunday.",
        "Back our campaign on Kickstarter and get the lock at 40% off the retail price.",
        "Run the installer, then add the tools to your PATH and restart your terminal.",
        "Visit the castle, take a boat trip on the river or relax in one of the town's cafés.",
        "All prices include VAT. Goods remain our property until paid for in full.",
    ),
    (
        "You can change your cookie settings at any time in your browser.",
        "Try searching our site or return to the home page.",
        "Forgotten your username? Contact customer support.",
        "Offer ends Sunday. While stocks last.",
        "Bake for 45 minutes until golden, then pour over the lemon syrup while warm.",
        "Past performance is not a guide to future returns and the value of investments can fall.",
        "The home side now sit third in the table, two points behind the leaders.",
        "A yellow weather warning for wind is in place for coastal areas.",
        "We have already raised {amount2} of our {amount} goal from 1,200 backers.",
        "See the reference manual for a full list of configuration options.",
        "Opening hours vary by season, so check before you travel.",
        "Returns are accepted within 30 days of delivery.",
    ),
)
IRRELEVANT_INTL: Sections = (
    (
        "Datenschutzerklärung",
        "Politique de cookies",
        "Recetas de cocina fáciles",
        "Angebote der Woche",
        "Météo du week-end",
        "Resultados de la jornada",
    ),
    (
        "Wir verwenden Cookies, um unsere Website für Sie optimal zu gestalten.",
        "Nous utilisons des cookies pour améliorer votre expérience de navigation.",
        "Mezcle la harina con los huevos y hornee durante veinte minutos.",
        "Alle Preise inklusive Mehrwertsteuer, zuzüglich Versandkosten.",
        "Un temps ensoleillé est attendu samedi, avec des averses dimanche.",
        "El equipo local ganó por dos goles a uno en un partido muy disputado.",
    ),
)

LABELS: dict[str, tuple[Sections, Sections | None]] = {
    "grant_opportunity": (GRANT_OPPORTUNITY, GRANT_OPPORTUNITY_INTL),
    "funder_profile": (FUNDER_PROFILE, FUNDER_PROFILE_INTL),
    "news": (NEWS, NEWS_INTL),
    "event": (EVENT, None),
    "report": (REPORT, None),
    "job_posting": (JOB_POSTING, None),
    "irrelevant": (IRRELEVANT, IRRELEVANT_INTL),
}
INTL_SHARE = 0.2


class LabelledDocument(msgspec.Struct, frozen=True, kw_only=True):
    """One line of classify_sample.jsonl: the document, its class and its split."""

    id: str
    split: str  # "train" or "heldout"
    label: str
    title: str
    text: str
    url: str | None = None


def classification_documents(seed: int = 0) -> list[LabelledDocument]:
    documents: list[LabelledDocument] = []
    for split, per_label, parity in (("train", TRAIN_PER_LABEL, 0), ("heldout", HELDOUT_PER_LABEL, 1)):
        for label, (sections, intl) in LABELS.items():
            for index in range(per_label):
                rng = random.Random(f"ccn-nlp-sample:{seed}:{split}:{label}:{index}")  # noqa: S311 - sample text
                use_intl = intl is not None and rng.random() < INTL_SHARE
                chosen = sections
                if use_intl and intl is not None:
                    # international sections list German, French, Spanish, then the same again:
                    # one language per document, its two alternatives split by parity
                    language = rng.randrange(3)
                    chosen = tuple(section[language::3] for section in intl)
                slots = _slots(rng, international=use_intl)
                title, body = _compose(rng, chosen, parity, slots)
                url = (
                    f"https://{slots['slug']}.example/{label.replace('_', '-')}/{index}" if rng.random() < 0.7 else None
                )
                documents.append(
                    LabelledDocument(
                        id=f"{split}-{label}-{index:03d}", split=split, label=label, title=title, text=body, url=url
                    )
                )
    return documents


def _compose(rng: random.Random, sections: Sections, parity: int, slots: dict[str, str]) -> tuple[str, str]:
    """A title from the first section and a body of one sentence from most of the others,
    each picked among the alternatives of the given parity."""
    title = _pick(rng, sections[0], parity).format(**slots)
    body_sections = list(sections[1:])
    keep = max(1, len(body_sections) - rng.randrange(2))
    chosen = sorted(rng.sample(range(len(body_sections)), keep))
    sentences = [_pick(rng, body_sections[i], parity).format(**slots) for i in chosen]
    if rng.random() < 0.5 and len(chosen) > 1:
        # a second sentence from one section, so documents vary in length
        extra = body_sections[rng.choice(chosen)]
        sentences.append(_pick(rng, extra, parity).format(**slots))
    return title, " ".join(sentences)


def _pick(rng: random.Random, alternatives: Sequence[str], parity: int) -> str:
    own = alternatives[parity::2]
    return own[rng.randrange(len(own))]


def _slots(rng: random.Random, *, international: bool) -> dict[str, str]:
    funder = rng.choice(FUNDERS_INTL if international else FUNDERS)
    year = rng.choice((2026, 2027))
    currency = rng.choice(("£", "$", "€")) if not international else "€"
    low = rng.choice((500, 1_000, 2_500, 5_000, 10_000))
    high = low * rng.choice((5, 10, 20))
    return {
        "funder": funder,
        "programme": rng.choice(PROGRAMMES),
        "topic": rng.choice(TOPICS),
        "place": rng.choice(PLACES),
        "person": rng.choice(PEOPLE),
        "role": rng.choice(ROLES),
        "amount": f"{currency}{high:,}" if currency != "€" or not international else f"{high:,} Euro".replace(",", "."),
        "amount2": f"{currency}{low:,}" if currency != "€" or not international else f"{low:,} Euro".replace(",", "."),
        "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {year}",
        "year": str(year),
        "year2": str(year + 3),
        "n": str(rng.randint(8, 140)),
        "slug": "".join(ch for ch in funder.lower() if ch.isascii() and ch.isalnum())[:24] or "funder",
    }


@dataclass(frozen=True, slots=True)
class _Written:
    path: Path
    lines: int


def write_jsonl(path: Path, items: Sequence[msgspec.Struct]) -> _Written:
    encoder = msgspec.json.Encoder()
    path.write_bytes(b"".join(encoder.encode(item) + b"\n" for item in items))
    return _Written(path, len(items))


# --- the entity evaluation set ---------------------------------------------------------------

# entity slots and the type each yields; other slots ({place} {count} {otherdate}) are plain text
ENTITY_SLOTS = {
    "org": "organization",
    "title": "opportunity_title",
    "deadline": "deadline_date",
    "amount": "monetary_amount",
    "amount2": "monetary_amount",
    "area": "program_area",
    "area2": "program_area",
    "person": "person_name",
}
# what a page says -> the canonical program area (as in data/program_areas.json)
AREA_PHRASES = (
    ("arts and culture", "arts_culture"),
    ("the arts", "arts_culture"),
    ("environmental", "environment"),
    ("climate action", "environment"),
    ("education", "education"),
    ("adult literacy", "education"),
    ("mental health", "health"),
    ("public health", "health"),
    ("youth", "youth"),
    ("young people", "youth"),
    ("older people", "older_people"),
    ("digital inclusion", "digital_inclusion"),
    ("sport", "sport"),
    ("heritage", "heritage"),
    ("homelessness", "housing"),
    ("food poverty", "poverty"),
    ("community development", "community_development"),
    ("scientific research", "research"),
    ("employment", "employment"),
    ("biodiversity", "environment"),
)
AREA_PHRASES_BY_LANGUAGE = {
    "de": (
        ("Kultur", "arts_culture"),
        ("Umweltschutz", "environment"),
        ("Bildung", "education"),
        ("Jugendarbeit", "youth"),
        ("Gesundheit", "health"),
    ),
    "fr": (
        ("la culture", "arts_culture"),
        ("l'environnement", "environment"),
        ("l'éducation", "education"),
        ("la jeunesse", "youth"),
        ("la santé", "health"),
    ),
}

ENTITY_SECTIONS_EN: Sections = (
    (
        "The {org} is inviting applications to the {title}, which supports {area} projects in {place}.",
        "Applications are now open for the {title}, run by the {org}.",
        "{org} has opened the {title} for organisations working on {area} and {area2}.",
        "Through the {title}, the {org} funds local work in {area}.",
        "The {title} from the {org} backs community groups in {place} working on {area}.",
        "This year the {org} will again run the {title}, open to groups focused on {area}.",
        "We, the {org}, are pleased to launch the {title} for {area} organisations.",
        "The {org} announces the {title}, a new scheme for {area} and {area2} in {place}.",
    ),
    (
        "Grants of up to {amount} are available.",
        "Awards range from {amount2} to {amount} per project.",
        "The total budget is {amount}, shared among about {count} projects.",
        "Each project can receive up to {amount} over two years.",
        "We will award between {amount2} and {amount} to each successful applicant.",
        "A pot of {amount} is available this round.",
        "Requests of up to {amount} will be considered; most awards are around {amount2}.",
        "The maximum grant is {amount}.",
    ),
    (
        "The deadline for applications is {deadline}.",
        "Applications close on {deadline} at noon.",
        "Submit your proposal by {deadline}.",
        "Closing date: {deadline}.",
        "The fund closes at 5pm on {deadline}.",
        "All applications must be received no later than {deadline}.",
        "Deadline: {deadline}",
        "Please apply before {deadline}.",
    ),
    (
        "Decisions will be announced on {otherdate}.",
        "The foundation was established in {year_founded} and has supported {count} groups.",
        "Projects must start after {otherdate}.",
        "Our last round, in {year_founded}, funded {count} projects.",
        "Trustees will meet on {otherdate} to decide.",
        "Funded work should finish by {otherdate}.",
        "Interviews will take place on {otherdate}.",
        "We were founded in {year_founded}.",
    ),
    (
        "For questions, contact {person}, Programme Manager.",
        "Our grants officer, {person}, can advise on your application.",
        "Please email {person} with any queries.",
        "Contact: {person}, Head of Grants.",
        "Speak to {person} before you apply.",
        "Dr {person} chairs the assessment panel.",
        "Questions can be sent to {person} in our grants team.",
        "The programme is led by {person}.",
    ),
)
ENTITY_SECTIONS_DE: Sections = (
    (
        "Die {org} fördert mit dem Programm „{title}“ Projekte im Bereich {area}.",
        "Mit dem Programm „{title}“ unterstützt die {org} Vereine in {place}.",
    ),
    (
        "Die Fördersumme beträgt bis zu {amount}.",
        "Gefördert werden Vorhaben mit bis zu {amount}.",
    ),
    (
        "Anträge können bis zum {deadline} eingereicht werden.",
        "Antragsschluss ist der {deadline}.",
    ),
    (
        "Ansprechpartnerin ist {person}.",
        "Fragen beantwortet {person}.",
    ),
)
ENTITY_SECTIONS_FR: Sections = (
    (
        "La {org} lance l'appel à projets « {title} » pour soutenir {area} à {place}.",
        "Avec « {title} », la {org} soutient les associations de {place}.",
    ),
    (
        "Les projets retenus recevront jusqu'à {amount}.",
        "La subvention peut atteindre {amount}.",
    ),
    (
        "Les dossiers doivent être déposés avant le {deadline}.",
        "Date limite de dépôt : {deadline}.",
    ),
    (
        "Contact : {person}.",
        "Votre interlocutrice est {person}.",
    ),
)
ENTITY_SECTIONS_ES: Sections = (
    (
        "La {org} abre la convocatoria «{title}» para apoyar proyectos en {place}.",
        "Con la convocatoria «{title}», la {org} apoya a entidades de {place}.",
    ),
    (
        "Las ayudas pueden alcanzar {amount} por proyecto.",
        "Cada proyecto podrá recibir hasta {amount}.",
    ),
    (
        "El plazo de solicitud termina el {deadline}.",
        "Fecha límite: {deadline}.",
    ),
    (
        "Persona de contacto: {person}.",
        "Para dudas, escriba a {person}.",
    ),
)
ENTITY_LANGUAGES = (
    ("en", ENTITY_SECTIONS_EN, 0.7),
    ("de", ENTITY_SECTIONS_DE, 0.1),
    ("fr", ENTITY_SECTIONS_FR, 0.1),
    ("es", ENTITY_SECTIONS_ES, 0.1),
)
MONTHS_BY_LANGUAGE = {
    "en": MONTHS,
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


class GoldEntity(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    start: int
    end: int
    value: str
    currency: str | None = None


class EntityDocument(msgspec.Struct, frozen=True, kw_only=True):
    """One line of entity_eval.jsonl: a text, the reference date its relative and year-less
    dates are read against, and its gold entities (character offsets into `text`)."""

    id: str
    split: str  # "dev" (rules looked at it) or "heldout" (never looked at while writing rules)
    language: str
    reference_date: str
    text: str
    entities: list[GoldEntity]


def entity_documents(count: int = ENTITY_DOCUMENTS, seed: int = 0) -> list[EntityDocument]:
    documents = []
    for index in range(count):
        split, parity = ("dev", 0) if index % 2 == 0 else ("heldout", 1)
        rng = random.Random(f"ccn-nlp-entities:{seed}:{index}")  # noqa: S311 - sample text
        roll, language, sections = rng.random(), "en", ENTITY_SECTIONS_EN
        for code, candidate, share in ENTITY_LANGUAGES:
            if roll < share:
                language, sections = code, candidate
                break
            roll -= share
        documents.append(_entity_document(f"{split}-{index:03d}", split, language, sections, parity, rng))
    return documents


def _entity_document(
    doc_id: str, split: str, language: str, sections: Sections, parity: int, rng: random.Random
) -> EntityDocument:
    reference = (2026, rng.randint(1, 12), rng.randint(1, 28))
    plain: dict[str, str] = {
        "place": rng.choice(PLACES),
        "count": str(rng.randint(5, 300)),
        "year_founded": str(rng.randint(1950, 2015)),
        "otherdate": _render_date(rng, language, (reference[0] + 1, rng.randint(1, 12), rng.randint(1, 28)))[0],
    }
    entity_values = _entity_values(rng, language, reference)
    text_parts: list[str] = []
    entities: list[GoldEntity] = []
    offset = 0
    for section in sections:
        if section is sections[-1] and rng.random() < 0.3:
            continue  # not every page names a contact
        template = _pick(rng, section, parity)
        for literal, slot in _split_template(template):
            if slot is None:
                piece = literal
            elif slot in ENTITY_SLOTS:
                rendered, value, currency = entity_values[slot]
                entities.append(
                    GoldEntity(
                        type=ENTITY_SLOTS[slot],
                        start=offset,
                        end=offset + len(rendered),
                        value=value,
                        currency=currency,
                    )
                )
                piece = rendered
            else:
                piece = plain[slot]
            text_parts.append(piece)
            offset += len(piece)
        text_parts.append(" ")
        offset += 1
    text = "".join(text_parts).rstrip()
    entities.sort(key=lambda entity: (entity.start, entity.type))
    return EntityDocument(
        id=doc_id,
        split=split,
        language=language,
        reference_date=f"{reference[0]:04d}-{reference[1]:02d}-{reference[2]:02d}",
        text=text,
        entities=entities,
    )


def _split_template(template: str) -> list[tuple[str, str | None]]:
    """ "a {x} b" -> [("a ", None), ("", "x"), (" b", None)]."""
    pieces: list[tuple[str, str | None]] = []
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        if before:
            pieces.append((before, None))
        pieces.append(("", slot))
    if rest:
        pieces.append((rest, None))
    return pieces


def _entity_values(
    rng: random.Random, language: str, reference: tuple[int, int, int]
) -> dict[str, tuple[str, str, str | None]]:
    """slot -> (text on the page, normalised value, currency)."""
    international = language != "en"
    funder = rng.choice(
        FUNDERS_INTL[:2]
        if language == "de"
        else FUNDERS_INTL[2:3]
        if language == "fr"
        else FUNDERS_INTL[3:]
        if language == "es"
        else FUNDERS
    )
    deadline_text, deadline_iso = _render_date(rng, language, _later_date(rng, reference), reference=reference)
    high = rng.choice((5_000, 10_000, 25_000, 50_000, 150_000, 2_500_000))
    low = high // rng.choice((5, 10))
    areas = rng.sample(AREA_PHRASES_BY_LANGUAGE.get(language, AREA_PHRASES), 2)
    title = rng.choice(PROGRAMMES)
    person = rng.choice(PEOPLE)
    return {
        "org": (funder, funder, None),
        "title": (title, title, None),
        "deadline": (deadline_text, deadline_iso, None),
        "amount": _render_amount(rng, high, international=international, language=language),
        "amount2": _render_amount(rng, low, international=international, language=language),
        "area": (areas[0][0], areas[0][1], None),
        "area2": (areas[1][0], areas[1][1], None),
        "person": (person, person, None),
    }


def _later_date(rng: random.Random, reference: tuple[int, int, int]) -> tuple[int, int, int]:
    year, month, _ = reference
    month += rng.randint(1, 10)
    if month > 12:
        year, month = year + 1, month - 12
    return year, month, rng.randint(1, 28)


def _render_date(
    rng: random.Random,
    language: str,
    date: tuple[int, int, int],
    *,
    reference: tuple[int, int, int] | None = None,
) -> tuple[str, str]:
    year, month, day = date
    months = MONTHS_BY_LANGUAGE[language]
    name = months[month - 1]
    iso = f"{year:04d}-{month:02d}-{day:02d}"
    if language == "de":
        return rng.choice((f"{day}. {name} {year}", f"{day:02d}.{month:02d}.{year}")), iso
    if language == "fr":
        return rng.choice((f"{day} {name} {year}", f"{'1er' if day == 1 else day} {name} {year}")), iso
    if language == "es":
        return rng.choice((f"{day} de {name} de {year}", f"{day:02d}/{month:02d}/{year}")), iso
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    formats = [
        f"{day} {name} {year}",
        f"{name} {day}, {year}",
        f"{day}{suffix} {name} {year}",
        f"{year}-{month:02d}-{day:02d}",
        f"{day:02d}/{month:02d}/{year}",
        f"{name[:3]} {day}, {year}",
    ]
    # a year-less date is read as its next occurrence from the reference date: only safe to
    # write when that is the year meant
    if reference is not None and (month, day) >= (reference[1], reference[2]) and year == reference[0]:
        formats.append(f"{day} {name}")
    return rng.choice(formats), iso


def _render_amount(
    rng: random.Random, value: int, *, international: bool, language: str
) -> tuple[str, str, str | None]:
    if international:
        grouped = f"{value:,}".replace(",", "." if language in {"de", "es"} else "\u00a0")
        return rng.choice((f"{grouped} Euro", f"{grouped} €", f"{grouped} euros")), str(value), "EUR"
    currency, symbol = rng.choice((("GBP", "£"), ("USD", "$"), ("EUR", "€"), ("CAD", "CA$"), ("AUD", "A$")))
    grouped = f"{value:,}"
    forms = [f"{symbol}{grouped}", f"{currency} {grouped}", f"{symbol}{grouped}.00"]
    if value % 1_000_000 == 0 or value % 100_000 == 0 and value >= 1_000_000:
        millions = f"{value / 1_000_000:g}"
        forms += [f"{symbol}{millions} million", f"{symbol}{millions}m"]
    elif value % 1_000 == 0:
        forms.append(f"{symbol}{value // 1_000}k")
    if currency == "EUR":
        forms.append(f"{grouped} euros")
    if currency == "GBP":
        forms.append(f"{grouped} pounds")
    return rng.choice(forms), str(value), currency


def main() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for written in (
        write_jsonl(SAMPLE_PATH, classification_documents()),
        write_jsonl(ENTITY_EVAL_PATH, entity_documents()),
    ):
        print(f"{written.path}: {written.lines} documents")


if __name__ == "__main__":
    main()
