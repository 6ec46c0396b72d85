"""The labelled documents the classifier is trained on and both NLP job types are measured
against: short pages of the kinds a grant-funding crawl meets, in seven classes.

Each class is a list of sections (a title, what the programme funds, who may apply, the
deadline, ...) and each section a list of alternative sentences, written by hand and filled
with invented funders, programmes, places, people, amounts and dates. A document takes one
alternative from most sections of its class. The split is by wording, not only by document:
a training document uses only the even-numbered alternatives of every section and a held-out
document only the odd-numbered ones, so the held-out figures measure sentences the model never
saw. Training documents also draw on wording written for training alone
(ccn_jobs.nlp_training_wording), which leaves every held-out document as it was. The same holds
for the entity evaluation set (`entity_documents`), whose gold spans are
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

from ccn_jobs.demo_corpus import MONTH_NAMES
from ccn_jobs.nlp_training_wording import TRAINING_ONLY_INTL, TRAINING_ONLY_WORDING

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE_PATH = DATA_DIR / "classify_sample.jsonl"
ENTITY_EVAL_PATH = DATA_DIR / "entity_eval.jsonl"

TRAIN_PER_LABEL = 100
HELDOUT_PER_LABEL = 30
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
MONTHS = MONTH_NAMES["en"]

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
        "Die {funder} fördert gemeinnützige Projekte, die sich mit {topic} befassen. Anträge sind bis zum {date} "
        "möglich.",
        "La {funder} lance un appel à projets pour soutenir les associations. Les dossiers doivent être déposés "
        "avant le {date}.",
        "La {funder} abre una convocatoria de ayudas para entidades sin ánimo de lucro. El plazo de solicitud "
        "termina el {date}.",
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
        "Über uns - {funder}",
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
        "Wie die Stiftung am Dienstag mitteilte, erhalten {n} Vereine eine Förderung. Die Vorsitzende {person} "
        "sagte, man sei beeindruckt.",
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
        "Key findings: 78% of projects met or exceeded their targets, and 9 in 10 grantees reported increased "
        "confidence.",
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
        "We are a Disability Confident employer and guarantee an interview to disabled candidates who meet the "
        "essential criteria.",
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


# A second round of wording for every section, in the same order as above: alternatives are
# appended, so even positions still train and odd ones are still held out.
MORE_WORDING: dict[str, Sections] = {
    "grant_opportunity": (
        (
            "Funding round now open: {programme}",
            "{programme}: guidance for applicants",
            "Small grants for {topic} projects",
            "Get funding for your community project",
            "{funder} grants programme {year}",
            "Apply for funding to tackle {topic}",
            "Round {n} of the {programme} is open",
            "Grants of up to {amount} for local charities",
        ),
        (
            "We want to fund ideas that tackle {topic} and are shaped by the people they are for.",
            "Community organisations in {place} can now bid for money to address {topic}.",
            "The {programme} offers flexible funding for work on {topic}, including core costs.",
            "If your group is working to reduce {topic}, this funding could help you do more.",
            "This open call invites bids from voluntary organisations responding to {topic}.",
            "Grants are available to help grassroots organisations respond to {topic}.",
            "We are looking to support bold, community-led responses to {topic} across {place}.",
            "The {funder} wants to hear from charities whose work on {topic} is ready to grow.",
        ),
        (
            "The maximum award is {amount}, and most grants will be between {amount2} and {amount}.",
            "Requests for up to {amount} over three years will be considered.",
            "We can contribute up to {amount} towards staff, volunteer expenses and overheads.",
            "Funding ranges from {amount2} for one-off activities to {amount} for multi-year work.",
            "Budgets should be realistic; the average award last round was {amount2}.",
            "Applicants may request any amount up to {amount}, including full cost recovery.",
            "We have {amount} to distribute in this round.",
            "Awards of up to {amount2} are available for capital items such as equipment.",
        ),
        (
            "Your organisation must be a registered charity, CIO or community interest company.",
            "Groups without charitable status can apply through a partner organisation.",
            "You must have a governing document, at least three unrelated board members and a bank account.",
            "Organisations with unrestricted reserves of more than twelve months' spending are not eligible.",
            "Applications from faith groups are welcome for activities open to the whole community.",
            "We cannot accept more than one application per organisation in each round.",
            "Previous grant holders may reapply once their end-of-grant report has been submitted.",
            "Statutory bodies and individuals are not eligible to apply.",
        ),
        (
            "Applications close at noon on {date}.",
            "The application window closes on {date}.",
            "The deadline for first-stage applications is {date}.",
            "Please submit your application no later than {date}.",
            "We must receive your completed form by 5pm on {date}.",
            "Stage one closes on {date}; successful applicants will be invited to stage two.",
            "Closing date: {date}.",
            "Proposals received after {date} will not be assessed.",
        ),
        (
            "Start your application online and upload your supporting documents.",
            "Complete the short eligibility quiz, then fill in the application form.",
            "You will need your governing document, latest accounts and a budget to apply.",
            "Applications are assessed by a panel including people with lived experience.",
            "Before applying, read the funding criteria and frequently asked questions.",
            "Send your completed application and budget template to the grants team by email.",
            "Successful applicants will receive a grant offer letter and conditions of grant.",
            "You can request the application form in large print or another language.",
        ),
    ),
    "funder_profile": (
        (
            "About the foundation",
            "Our story",
            "Our purpose",
            "Meet the team",
            "Governance",
            "What we stand for",
            "Our founder",
            "The {funder} at a glance",
        ),
        (
            "The trust was established by a local philanthropist who left her estate to benefit {place}.",
            "We are an endowed foundation with assets of around {amount}.",
            "Founded in {year}, the {funder} supports charitable work across {place} and beyond.",
            "We are an independent charity funded entirely by the income from our endowment.",
            "Our founder made his fortune in shipbuilding and wanted to give back to the city.",
            "The foundation grew out of a family business that was sold in the 1980s.",
            "We were created by a gift from a local building society when it demutualised.",
            "Our work is funded by an endowment invested for the long term.",
        ),
        (
            "We want a society in which everyone has a fair chance in life.",
            "Our vision is of thriving communities where no one is left behind.",
            "We believe in trust-based funding: unrestricted, multi-year and with light reporting.",
            "Our priorities for the next five years are {topic} and the strength of local civil society.",
            "We focus our resources where they can make the biggest long-term difference.",
            "Equity, diversity and inclusion are at the heart of how we make decisions.",
            "We listen to the people closest to the issues and let them lead.",
            "We see ourselves as one part of a wider ecosystem of funders and charities.",
        ),
        (
            "Our board of trustees sets the strategy and approves all grants above {amount2}.",
            "{person} chairs our board and has served as a trustee since 2015.",
            "Day-to-day management is delegated to our {role}, {person}.",
            "We are registered with the Charity Commission for England and Wales.",
            "The trustees are supported by investment and grants committees.",
            "Our staff team of twelve works from an office in {place}.",
            "We publish our accounts, investment policy and grants data every year.",
            "New trustees are recruited openly and serve terms of four years.",
        ),
        (
            "Over the last decade we have supported more than 1,500 organisations.",
            "We fund through a small number of open programmes and by invitation.",
            "In total we give around {amount} a year in grants.",
            "Our grants have helped build village halls, fund youth workers and save historic buildings.",
            "Alongside our grants we convene networks of local organisations.",
            "We are proud to be a signatory of the Open and Trusting Grant-making commitments.",
            "Many of the groups we fund have been our partners for over ten years.",
            "We also manage donor-advised funds for local families and companies.",
        ),
    ),
    "news": (
        (
            "Youth charities share {amount} windfall",
            "{funder} launches {amount} fund",
            "Foundation backs {n} community projects",
            "New chief executive for {funder}",
            "Funding boost for {place} food banks",
            "Grants announced for heritage projects",
            "{funder} to close fund after review",
            "Charity celebrates award from {funder}",
        ),
        (
            "More than {n} charities will benefit from grants announced by the {funder} this week.",
            "The {funder} has unveiled a new fund worth {amount} aimed at {topic}.",
            "A youth club in {place} is among the organisations to receive money in the latest round.",
            "The foundation confirmed on Friday that the fund will not reopen next year.",
            "Organisers said the money would allow them to keep their doors open through the winter.",
            "The grants were announced at a reception attended by local councillors.",
            "Last month the trust revealed it had received a record number of applications.",
            "The charity learned of its success on Wednesday after a six-month wait.",
        ),
        (
            '"We are delighted to support such a wide range of groups," said {person}.',
            "{person}, who takes up the post in January, said she was honoured to be appointed.",
            '"It\'s a lifeline for us," said {person}, who runs the project.',
            "A spokesperson for the council said the grants would complement its own programmes.",
            "{person} said the decision to close the fund had not been taken lightly.",
            "The foundation's {role}, {person}, described the response as overwhelming.",
            "According to {person}, demand for help has risen sharply since the spring.",
            '"This changes everything for us," volunteer coordinator {person} told the paper.',
        ),
        (
            "The grants range from {amount2} to {amount} and will run for up to three years.",
            "Among the winners is a community radio station that trains young presenters.",
            "The foundation said it would share what it learned with other funders.",
            "It is the third time this year that the trust has increased its budget.",
            "The successful groups were chosen by a panel that included young people.",
            "The money will be paid in instalments over the next two years.",
            "Applicants who missed out this time can apply again in the spring.",
            "The story was first reported by the local newspaper.",
        ),
    ),
    "event": (
        (
            "Meet the funder: online Q&A",
            "Workshop: telling your impact story",
            "Masterclass on bid writing",
            "Open evening at our {place} office",
            "Regional funders' forum {year}",
            "Lunch and learn: trust-based grant-making",
            "Webinar recording and slides",
            "Volunteer managers' network meeting",
        ),
        (
            "The session will run online on {date} from 1pm to 2pm.",
            "Our open evening is on {date} from 5pm to 7pm at our offices in {place}.",
            "Join the masterclass on {date}; it starts at 10am and finishes at 3pm.",
            "The forum meets on {date} at the Guildhall, {place}.",
            "The meeting will take place on {date} in the main hall.",
            "Bring your lunch and join us online on {date} at 12.30pm.",
            "This is a half-day event on {date}, with coffee from 9am.",
            "Missed the live session? The recording from {date} is now available.",
        ),
        (
            "Book a place using the link below; places are free but limited to 40.",
            "Registration closes two days before the event.",
            "Tickets are free for members and £20 for non-members.",
            "Sign up to receive the joining instructions by email.",
            "Please register by the day before so we can plan catering.",
            "We will send a reminder and the slides to everyone who registers.",
            "Captions and British Sign Language interpretation will be provided.",
            "Parking is available on site, and the venue is a short walk from the station.",
        ),
        (
            "You will hear from grant holders about what made their applications stand out.",
            "The panel will be chaired by {person}, our {role}.",
            "There will be breakout rooms for small group discussion.",
            "Presenters will share practical tips and templates you can use straight away.",
            "Attendees can book a 15-minute one-to-one slot with a grants officer.",
            "The programme includes a keynote, two panel discussions and networking.",
            "Come along to meet other volunteer managers and share good practice.",
            "The recording, slides and a summary of questions are available below.",
        ),
    ),
    "report": (
        (
            "Trustees' report for the year ended 31 March {year}",
            "What we funded in {year}",
            "Independent evaluation: final report",
            "Briefing: trends in local giving",
            "Five-year review of our grant-making",
            "Research report: the value of small grants",
            "Our impact in {year}",
            "Case studies and learning",
        ),
        (
            "This document sets out our performance against the objectives agreed by the trustees.",
            "This report looks back on a year in which we made {n} grants worth {amount}.",
            "The independent evaluators were asked to assess the programme's outcomes and value for money.",
            "This briefing analyses ten years of data on grants to organisations in {place}.",
            "We commissioned this review to understand what difference our funding has made.",
            "The research combined a survey of 800 small charities with focus groups.",
            "In this report, grantees describe in their own words what changed.",
            "The case studies were chosen to show the range of work we fund.",
        ),
        (
            "Income from investments fell slightly, while grant expenditure rose by 8%.",
            "Two thirds of respondents said the grant helped them attract other funding.",
            "Chart 1 compares the number of awards by region with the population of each region.",
            "The evaluation found strong evidence of improved wellbeing among participants.",
            "Our analysis suggests that organisations with incomes under {amount2} are underfunded.",
            "Participants reported increased confidence, new friendships and better mental health.",
            "Reserves at the year end stood at {amount}, in line with our reserves policy.",
            "The data indicate a widening gap between urban and rural areas.",
        ),
        (
            "The full report is available to download (PDF, 60 pages).",
            "Appendix A describes the survey questions and sampling method.",
            "We thank the evaluation team and all the grantees who gave their time.",
            "A summary of recommendations is on page 4.",
            "The financial statements were audited by an independent firm of accountants.",
            "Data tables are available in spreadsheet form on request.",
            "We will publish a response to the recommendations in the autumn.",
            "Limitations of the study are discussed in chapter 6.",
        ),
    ),
    "job_posting": (
        (
            "Vacancy: Grants Assessor (maternity cover)",
            "Job: Data and Insight Analyst",
            "We are recruiting a Chief Executive",
            "Position available: Programme Officer",
            "Work with us: Grants Administrator",
            "Job advert: Partnerships Manager",
            "Now hiring: Digital Officer (part time)",
            "Trustee recruitment: join our board",
        ),
        (
            "Salary: £34,000 to £37,000, depending on experience.",
            "Part time, 0.6 FTE, salary £39,000 pro rata.",
            "This role is home-based with occasional travel to {place}.",
            "The position is offered on a permanent basis, 37.5 hours per week.",
            "Benefits include 30 days' holiday, an employer pension contribution of 8% and flexible hours.",
            "This is a 9-month fixed-term contract to cover maternity leave.",
            "Starting salary is {amount2}, rising with annual increments.",
            "Trustees are not paid, but travel expenses are covered.",
        ),
        (
            "You will assess grant applications, carry out due diligence and write recommendations.",
            "The post holder will analyse our grants data and produce clear reports.",
            "We need a strategic leader who can build on our strong foundations.",
            "Key duties include managing a caseload of grants and visiting projects.",
            "You will process payments, maintain the grants database and answer enquiries.",
            "We are looking for someone who can develop partnerships with other funders.",
            "The ideal candidate will be confident with social media and website content.",
            "We would particularly welcome trustees with legal or financial experience.",
        ),
        (
            "Please apply with a CV and a supporting statement of no more than two pages.",
            "The closing date is {date}, and interviews are planned for the following fortnight.",
            "Applications should be made through our recruitment portal.",
            "Shortlisted candidates will be asked to complete a short written exercise.",
            "Read the candidate pack for the full job description and person specification.",
            "We are committed to building a team that reflects the communities we serve.",
            "If you would like an informal chat about the role, contact {person}.",
            "Successful applicants will need a basic DBS check.",
        ),
    ),
    "irrelevant": (
        (
            "Your basket",
            "Privacy notice",
            "Best hiking trails near {place}",
            "Fund factsheet: Global Equity Income Fund",
            "How to grant file permissions in Linux",
            "Student finance: applying for a maintenance loan",
            "Error 500: something went wrong",
            "Mortgage rates this week",
            "Review: the new electric hatchback",
            "Newsletter archive",
            "Bin collection days over the holidays",
            "Contact our customer service team",
        ),
        (
            "Your basket is empty. Continue shopping or check out our latest arrivals.",
            "This notice explains how we collect and use your personal data.",
            "The ridge walk takes about four hours and offers views across the valley.",
            "The fund aims to deliver a rising income and long-term capital growth.",
            "Use chmod to grant read and write permissions to the owner of the file.",
            "Full-time students can apply for a maintenance loan to help with living costs.",
            "The server encountered an internal error and could not complete your request.",
            "Two-year fixed rates fell again this week as lenders competed for business.",
            "The hatchback offers a range of 250 miles and charges to 80% in half an hour.",
            "Browse past issues of our monthly newsletter.",
            "Collections will move by one day during the week after Christmas.",
            "Our team is available Monday to Friday, 9am to 5pm.",
        ),
        (
            "Free returns within 28 days.",
            "You have the right to ask for a copy of the data we hold about you.",
            "Wear sturdy boots, as the path can be muddy after rain.",
            "The ongoing charge for the fund is 0.85% a year.",
            "Run ls -l to check the new permissions.",
            "Apply online before the deadline for your course start date.",
            "Please try again later or contact the site administrator.",
            "Compare deals and check your eligibility without affecting your credit score.",
            "Prices start from £32,000 before the government grant for electric cars.",
            "Subscribe to get future issues in your inbox.",
            "Please put your bins out by 7am on collection day.",
            "We aim to reply to all emails within two working days.",
        ),
    ),
}


# A third round, written later still, for every class alike and in the same section order.
THIRD_WORDING: dict[str, Sections] = {
    "grant_opportunity": (
        (
            "Bids invited: {programme}",
            "Now open: the {programme}",
            "Seed funding for new ideas",
            "{funder} capacity-building grants",
            "Apply to the {programme} by {date}",
            "Funding opportunity for {place} charities",
            "Emergency grants for frontline groups",
            "Development grants {year}-{year2}",
        ),
        (
            "This programme offers seed funding to test new ideas that could reduce {topic}.",
            "We fund frontline organisations facing rising demand because of {topic}.",
            "Capacity-building grants help small charities strengthen their governance, systems and skills.",
            "The scheme backs partnerships between charities and public bodies working on {topic}.",
            "Funding is available for projects that bring neighbours together and tackle {topic}.",
            "Our emergency grants support groups responding to a sudden rise in {topic}.",
            "The {funder} is seeking applications from organisations with a track record on {topic}.",
            "Development grants allow promising projects to grow and reach more people.",
        ),
        (
            "Each award covers up to 100% of eligible costs, to a maximum of {amount}.",
            "Seed grants are fixed at {amount2}; development grants can be up to {amount}.",
            "The programme has a budget of {amount} over three rounds.",
            "Most grants fall between {amount2} and {amount}, paid in quarterly instalments.",
            "We can fund salaries, training, volunteer costs and a fair share of overheads up to {amount}.",
            "There is no minimum grant, but requests above {amount} will not be considered.",
            "Emergency grants of {amount2} are paid within ten working days of approval.",
            "Multi-year awards of up to {amount} a year are possible for established organisations.",
        ),
        (
            "Applicants must be not-for-profit and based in, or serving people in, {place}.",
            "Your annual turnover must be less than {amount} to be eligible for this fund.",
            "Partnership bids must name a lead organisation that will hold the grant.",
            "We welcome applications from organisations led by disabled people.",
            "You must be able to show at least twelve months of financial records.",
            "Organisations that received a grant in the last round are not eligible this time.",
            "Unincorporated associations with a written constitution can apply for seed grants.",
            "Universities, NHS trusts and local authorities are not eligible as lead applicants.",
        ),
        (
            "The portal will close for new applications on {date}.",
            "Bids must reach us before {date}.",
            "Emergency grants are open all year; development grants close on {date}.",
            "Completed applications must be uploaded by 11:59pm on {date}.",
            "The final date for submissions is {date}.",
            "Outline proposals are due on {date}, with full bids by invitation.",
            "We will stop accepting applications on {date} or once 200 have been received.",
            "Round two opens in spring, and round one closes on {date}.",
        ),
        (
            "Use the online form to tell us about your organisation, your project and your budget.",
            "Assessors will score each bid against the published criteria.",
            "Attach a signed declaration from two members of your management committee.",
            "An assessor may call you to discuss your bid before it goes to panel.",
            "Bids are reviewed by staff and a panel of community members.",
            "Upload your safeguarding policy and your most recent annual accounts.",
            "We aim to let all applicants know the outcome within ten weeks.",
            "Please do not send additional documents unless we ask for them.",
        ),
    ),
    "funder_profile": (
        (
            "Mission and vision",
            "Where our money comes from",
            "Leadership",
            "Our board",
            "History of the {funder}",
            "Principles we fund by",
            "Annual giving at a glance",
            "Partners and networks",
        ),
        (
            "The {funder} began in 1969 when a group of local business leaders pooled their resources.",
            "Our income comes from an investment portfolio built up since the foundation was created.",
            "A bequest from a local doctor established the trust in 1931.",
            "We are an independent funder with no political or religious affiliation.",
            "The foundation is funded by an annual donation from a regional water company.",
            "Our endowment was set up when the family sold its engineering business.",
            "We are a charitable incorporated organisation governed by our constitution.",
            "The trust was one of the first community foundations in the country.",
        ),
        (
            "We exist to tackle the root causes of inequality in {place}.",
            "Our vision is that every young person in {place} has somewhere to go and someone to talk to.",
            "We favour long-term relationships and core funding over short projects.",
            "Our guiding principles are fairness, transparency and respect.",
            "We focus on places and people that mainstream funding does not reach.",
            "We aim to shift power to communities by involving them in our decisions.",
            "Our current strategy concentrates on {topic} and on climate justice.",
            "We think of ourselves as stewards of money that belongs to the community.",
        ),
        (
            "{person} became our {role} in 2021 after a career in community development.",
            "The board meets quarterly and includes two trustees under the age of 30.",
            "Trustees receive no payment for their work.",
            "Our senior team reports to the board through a finance and audit committee.",
            "Details of the board, including biographies, are listed below.",
            "We publish a register of trustees' interests each year.",
            "The chair, {person}, has lived in {place} for most of her life.",
            "Our governance follows the Charity Governance Code.",
        ),
        (
            "We give about {amount} each year through grants and loans.",
            "Our grant-holders range from parent-led playgroups to national charities.",
            "We are founding members of a local funders' network in {place}.",
            "In recent years we have supported more than {n} organisations.",
            "We share our grants data through 360Giving.",
            "Beyond money, we lend our meeting rooms to community groups free of charge.",
            "Our giving has grown steadily since the endowment was refinanced.",
            "We co-fund with national foundations when their priorities align with ours.",
        ),
    ),
    "news": (
        (
            "Record {amount} donation for {place} charity",
            "Council and foundation team up on {topic}",
            "{funder} marks 50 years of giving",
            "Small charities hit by funding squeeze, survey finds",
            "Foundation doubles budget for {topic}",
            "{n} projects backed in latest round",
            "Trust names {person} as chair",
            "Local arts groups win national lottery support",
        ),
        (
            "A local homelessness charity has received the largest single donation in its history.",
            "The council and the {funder} have agreed a joint plan to tackle {topic}, officials said.",
            "Celebrations were held on Saturday to mark the foundation's fiftieth anniversary.",
            "A survey of 300 small charities published today found that half expect to cut services.",
            "The trust confirmed yesterday that it will double its grants budget next year.",
            "Dozens of projects across {place} have been awarded funding in the latest round.",
            "The board of the {funder} has elected a new chair, the charity said on Thursday.",
            "Three arts organisations in {place} have been awarded lottery funding, it emerged this week.",
        ),
        (
            '"We could not believe it when the call came," said {person}, the charity\'s founder.',
            "{person} said the partnership was a first for the region.",
            '"Fifty years on, our mission is as urgent as ever," said {person}.',
            "Speaking to the BBC, {person} warned that some charities could close by the summer.",
            '"Demand has never been higher," said {person}, {role} at the trust.',
            "{person} said the panel had been impressed by the ambition of the applications.",
            "The new chair, {person}, said she wanted the trust to be bolder.",
            "A spokesperson for the arts council said the awards reflected the strength of local culture.",
        ),
        (
            "The donation, from an anonymous benefactor, will fund a new night shelter.",
            "Under the plan, the council will match every pound the foundation spends.",
            "An exhibition about the foundation's history opens at the library next month.",
            "The survey was carried out by the regional council for voluntary service.",
            "The extra money comes after strong returns on the trust's investments.",
            "The successful projects will be showcased at an event in the autumn.",
            "The appointment takes effect immediately.",
            "The awards are part of a national programme worth {amount}.",
        ),
    ),
    "event": (
        (
            "Summer school for charity treasurers",
            "Roadshow: meet the grants team in {place}",
            "Annual conference {year}",
            "Online clinic: eligibility questions answered",
            "Celebration evening for our grantees",
            "Peer learning circle for youth workers",
            "Briefing session for new applicants",
            "Festival of community action",
        ),
        (
            "The summer school runs over three mornings, starting on {date}.",
            "Our roadshow visits {place} on {date}, 10am to 1pm, at the Library.",
            "This year's conference takes place on {date} at the Riverside Centre, {place}.",
            "Clinics run on Tuesdays from {date}, with 20-minute slots.",
            "The celebration evening is on {date} from 6.30pm.",
            "The circle meets online every other Wednesday from {date}.",
            "The briefing will be held on {date} at 11am via Microsoft Teams.",
            "The festival fills the town square on {date}, from noon until late.",
        ),
        (
            "Spaces are free but must be booked in advance through our website.",
            "Book a 20-minute slot using the calendar below.",
            "Early bird tickets are available until the end of the month.",
            "Please let us know your dietary requirements when you book.",
            "Entry is free and there is no need to book.",
            "To join the circle, complete the short sign-up form.",
            "A link to join will be sent 24 hours before the session.",
            "Stalls for local groups can be reserved for a small fee.",
        ),
        (
            "Sessions cover budgeting, reserves, audits and working with your bank.",
            "You can drop in to talk to a grants officer about your idea.",
            "The programme features workshops, a marketplace and an awards ceremony.",
            "Staff will answer questions about eligibility and the application process.",
            "Grantees will share stories from their projects over food and music.",
            "Each session starts with a short input followed by peer discussion.",
            "The session will explain the criteria and how decisions are made.",
            "There will be live music, food stalls and activities for children.",
        ),
    ),
    "report": (
        (
            "Annual review {year}",
            "Equity audit of our grant-making",
            "Mid-term evaluation report",
            "State of the sector survey {year}",
            "Financial statements for the year",
            "Insights from five years of funding",
            "Summary report: community consultation",
            "Impact and learning report",
        ),
        (
            "This annual review describes what we funded and what we learned during the year.",
            "We commissioned an independent audit of who receives our grants and who does not.",
            "The mid-term evaluation reviews progress against the programme's theory of change.",
            "This survey of 1,100 charities tracks finances, staffing and demand for services.",
            "The financial statements show the trust's income, expenditure and assets at the year end.",
            "The report draws together monitoring returns from {n} grantees.",
            "The consultation ran for twelve weeks and received over 900 responses.",
            "This report sets out the difference our funding made and the lessons we took from it.",
        ),
        (
            "Organisations led by people of colour received 9% of our funding, below our target.",
            "Progress has been strongest on outcomes for young people and weakest on employment.",
            "Average reserves fell to four months of spending, the lowest level recorded.",
            "Net assets increased to {amount} owing to gains on investments.",
            "Grantees told us that flexible funding helped them respond to change.",
            "Respondents ranked {topic} as the most pressing issue for the area.",
            "The analysis shows a strong link between core funding and organisational resilience.",
            "The audit recommends publishing our decision-making criteria in plain language.",
        ),
        (
            "Download the annual review (PDF).",
            "The methodology and full data are published alongside this report.",
            "The full evaluation and a management response are available below.",
            "The report is free to download; printed copies are available on request.",
            "Notes to the accounts begin on page 32.",
            "An interactive version of the findings is also available.",
            "We will report on progress against these recommendations next year.",
            "Please cite this report as: {funder} ({year}), Impact and learning report.",
        ),
    ),
    "job_posting": (
        (
            "Job: Grants and Learning Coordinator",
            "Vacancy: Office Manager",
            "Post: Senior Grants Manager (18-month contract)",
            "Careers at the {funder}",
            "Recruitment: Director of Finance",
            "Internship: Philanthropy Trainee",
            "Role: Community Engagement Officer",
            "Apply to become a grants panel member",
        ),
        (
            "Salary £26,500, 30 hours a week, based in {place}.",
            "This is a part-time post of three days a week with a salary of £30,000 pro rata.",
            "The contract is for 18 months, full time, with a salary of {amount2}.",
            "We offer a competitive salary, hybrid working and a 9-day fortnight.",
            "Remuneration: {amount2} plus pension and private health insurance.",
            "The traineeship is paid at the real Living Wage and lasts twelve months.",
            "The role is permanent and full time, with some evening and weekend work.",
            "Panel members receive a day rate of £150 and their expenses.",
        ),
        (
            "You will coordinate grant rounds, monitor grants and collect learning from grantees.",
            "The office manager keeps our building, systems and suppliers running smoothly.",
            "You will lead a team of four grants managers and oversee a portfolio of {amount}.",
            "We are looking for someone organised, curious and good with people.",
            "The director of finance will oversee investments, audit and financial planning.",
            "Trainees rotate between grants, communications and finance teams.",
            "You will build relationships with community groups across {place}.",
            "Panel members read applications and help decide which projects we fund.",
        ),
        (
            "Apply by {date} using the form on our careers page.",
            "Send a CV and a cover letter explaining why you want the role.",
            "Interviews will take place in person in {place} during the week after closing.",
            "Applications close at midnight on {date}.",
            "The recruitment pack includes the full job description and our benefits.",
            "We welcome applications from people who have lived experience of {topic}.",
            "Please contact {person} in our HR team if you need the pack in another format.",
            "All offers are subject to references and a right to work check.",
        ),
    ),
    "irrelevant": (
        (
            "Frequently asked questions about delivery",
            "Accessibility statement",
            "Gift cards",
            "Pension fund performance update",
            "How to grant access to a shared mailbox",
            "Best slow cooker chilli",
            "Traffic updates for {place}",
            "Job seeker's allowance: how to claim",
            "Photo gallery",
            "Subscribe to our podcast",
            "Site map",
            "Book review: a history of the canal",
        ),
        (
            "Orders placed before 2pm are dispatched the same day.",
            "We want this website to be usable by as many people as possible.",
            "Gift cards can be spent online and in any of our stores.",
            "The scheme's fund returned 6.2% over the year after fees.",
            "Open the admin centre, select the mailbox and grant full access to the user.",
            "Brown the mince with onions, then add beans, tomatoes and spices and cook for six hours.",
            "Roadworks on the ring road will cause delays until the end of the month.",
            "You can claim jobseeker's allowance online if you are out of work.",
            "Browse photos from our open day and summer fair.",
            "New episodes every Thursday on all major podcast apps.",
            "A full list of the pages on this website.",
            "This engaging history traces the canal from its construction to its restoration.",
        ),
        (
            "Track your parcel using the link in your confirmation email.",
            "If you find any problems, please contact us so that we can fix them.",
            "Gift cards are valid for 24 months from the date of purchase.",
            "Members can view their benefit statements in the online portal.",
            "Changes can take up to an hour to take effect.",
            "Serve with rice, sour cream and grated cheese.",
            "Check the live map before you set off.",
            "You will need your National Insurance number and bank details.",
            "Click any image to see it full size.",
            "Rate and review us if you enjoy the show.",
            "Use the search box if you cannot find what you need.",
            "Published in hardback with 48 illustrations.",
        ),
    ),
}


def _extended(label: str, sections: Sections) -> Sections:
    for more in (MORE_WORDING[label], THIRD_WORDING[label]):
        if len(more) != len(sections):
            raise ValueError(f"{label}: {len(more)} sections of more wording for {len(sections)}")
        sections = tuple(base + extra for base, extra in zip(sections, more, strict=True))
    return sections


LABELS: dict[str, tuple[Sections, Sections | None]] = {
    "grant_opportunity": (_extended("grant_opportunity", GRANT_OPPORTUNITY), GRANT_OPPORTUNITY_INTL),
    "funder_profile": (_extended("funder_profile", FUNDER_PROFILE), FUNDER_PROFILE_INTL),
    "news": (_extended("news", NEWS), NEWS_INTL),
    "event": (_extended("event", EVENT), None),
    "report": (_extended("report", REPORT), None),
    "job_posting": (_extended("job_posting", JOB_POSTING), None),
    "irrelevant": (_extended("irrelevant", IRRELEVANT), IRRELEVANT_INTL),
}
INTL_SHARE = 0.2
# classes whose sections list one page per position (unrelated pages have nothing to mix)
ALIGNED_LABELS = frozenset({"irrelevant"})


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
                # this split's wording: the alternatives of its parity, and for training those
                # written for training alone
                own = tuple(section[parity::2] for section in sections)
                extra = TRAINING_ONLY_WORDING[label] if split == "train" else None
                language = 0
                if use_intl and intl is not None:
                    # international sections list German, French, Spanish, then the same again:
                    # one language per document, its two alternatives split by parity
                    language = rng.randrange(3)
                    own = tuple(section[language::3][parity::2] for section in intl)
                    extra = TRAINING_ONLY_INTL.get(label) if split == "train" else None
                    extra = tuple(section[language::3] for section in extra) if extra else None
                if extra is not None:
                    own = tuple(mine + more for mine, more in zip(own, extra, strict=True))
                slots = _slots(rng, international=use_intl, language=language if use_intl else None)
                title, body = _compose(rng, own, slots, aligned=label in ALIGNED_LABELS)
                url = f"https://{slots['slug']}.example/page/{split}-{index}" if rng.random() < 0.7 else None
                documents.append(
                    LabelledDocument(
                        id=f"{split}-{label}-{index:03d}", split=split, label=label, title=title, text=body, url=url
                    )
                )
    return documents


def _compose(
    rng: random.Random, sections: Sections, slots: dict[str, str], *, aligned: bool = False
) -> tuple[str, str]:
    """A title from the first section and a body of one sentence from most of the others, each
    picked among the alternatives given (one split's). `aligned`: the sections' n-th
    alternatives belong together (one page: a recipe, a cookie policy), so one n for all."""
    if aligned:
        index = rng.choice(range(min(len(section) for section in sections)))
        return sections[0][index].format(**slots), " ".join(s[index].format(**slots) for s in sections[1:])
    title = _chosen(rng, sections[0]).format(**slots)
    body_sections = list(sections[1:])
    keep = max(1, len(body_sections) - rng.randrange(2))
    chosen = sorted(rng.sample(range(len(body_sections)), keep))
    sentences = [_chosen(rng, body_sections[i]).format(**slots) for i in chosen]
    if rng.random() < 0.5 and len(chosen) > 1:
        # a second sentence from one section, so documents vary in length
        extra = body_sections[rng.choice(chosen)]
        sentences.append(_chosen(rng, extra).format(**slots))
    return title, " ".join(sentences)


def _chosen(rng: random.Random, alternatives: Sequence[str]) -> str:
    return alternatives[rng.randrange(len(alternatives))]


def _pick(rng: random.Random, alternatives: Sequence[str], parity: int) -> str:
    own = alternatives[parity::2]
    return own[rng.randrange(len(own))]


# the international funders by the language of their pages: German, French, Spanish
FUNDERS_BY_LANGUAGE = (FUNDERS_INTL[:2], FUNDERS_INTL[2:3], FUNDERS_INTL[3:])


def _slots(rng: random.Random, *, international: bool, language: int | None = None) -> dict[str, str]:
    funder = rng.choice(FUNDERS_BY_LANGUAGE[language] if language is not None else FUNDERS)
    months = MONTHS_BY_LANGUAGE[("de", "fr", "es")[language]] if language is not None else MONTHS
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
        "date": f"{rng.randint(1, 28)} {rng.choice(months)} {year}",
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
MONTHS_BY_LANGUAGE = MONTH_NAMES


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
    if value % 1_000_000 == 0 or (value % 100_000 == 0 and value >= 1_000_000):
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
