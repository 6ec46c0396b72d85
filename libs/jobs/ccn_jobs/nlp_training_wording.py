"""More wording for the classifier's training split only (ccn_jobs.nlp_corpus).

The held-out split measures sentences the model never saw: it is built from the odd-numbered
alternatives of nlp_corpus's sections, the training split from the even-numbered ones. The
sections below add alternatives that only training documents draw from, so the training split
grows in variety while every held-out document stays byte for byte what it was. They were
written after the first model missed on vacancies, events and pages in German, French and
Spanish, from what such pages commonly say, never copied or paraphrased from held-out text.

Same form as nlp_corpus: label -> sections (in the order of that label's sections there) ->
alternatives, with the same slots. International sections list German, French, Spanish, then
the same again. Unrelated pages (`irrelevant`) are aligned: the n-th alternatives of its
sections make one page.

Licence: written for this project, CC0 1.0. Every funder, person, place and figure is fictional.
"""

from __future__ import annotations

Sections = tuple[tuple[str, ...], ...]

TRAINING_ONLY_WORDING: dict[str, Sections] = {
    "grant_opportunity": (
        (
            "{programme}: notes for organisations thinking of bidding",
            "Accepting bids now: neighbourhood awards in {place}",
            "How to apply for the {programme}",
            "The {programme} welcomes new bids",
            "Start-up money for grassroots ventures",
            "Capital grants for village halls and community buildings",
        ),
        (
            "We fund work led by and for people affected by {topic}.",
            "The {programme} helps small organisations test ideas, grow their reach or keep vital services running.",
            "We want to hear from groups with a clear plan to make {place} a better place to live.",
            "Grants can pay for staff, volunteers' expenses, equipment, rent and evaluation.",
            "Priority will be given to projects that involve the people they are meant to help in their design.",
            "This fund exists to help community groups recover, adapt and plan for the future.",
        ),
        (
            "You may request any amount from {amount2} to {amount}.",
            "The maximum grant is {amount} over three years; most awards are smaller.",
            "Established groups can ask for core costs, capped at {amount} annually, for several years.",
            "We can contribute up to half of the cost of capital works, to a maximum of {amount}.",
            "Micro-grants of {amount2} are available to unconstituted groups with a partner organisation.",
            "Bids larger than {amount} fall outside this scheme.",
        ),
        (
            "Your organisation must have a governing document, a bank account with two signatories and a "
            "safeguarding policy.",
            "Applicants need an annual turnover under {amount} and must work in {place}.",
            "We welcome joint applications from two or more organisations working together.",
            "Sole traders, companies that distribute profit and public bodies cannot be funded.",
            "Groups that received a grant from us in the last twelve months should wait before applying again.",
            "You can apply if you are a charity, a community interest company or a co-operative.",
        ),
        (
            "Applications open on {date} and close four weeks later.",
            "The next funding panel meets in {date}; submit at least eight weeks before.",
            "Stage one forms must reach us by noon on {date}.",
            "We will let you know our decision by {date}.",
            "There are three deadlines a year; the next is {date}.",
            "Once the budget for this round is spent the programme will close early.",
        ),
        (
            "Answer four quick questions to see if you qualify, then begin your bid online.",
            "Call our funding advice line to talk through your idea before you apply.",
            "Attach a budget, your most recent accounts and your safeguarding policy to the form.",
            "Residents of {place} sit on the panel that scores each bid.",
            "Successful groups will be asked to send a short report at the end of the grant.",
            "Questions about the guidance can be sent to grants@{slug}.example.",
        ),
    ),
    "funder_profile": (
        (
            "Where we came from",
            "People behind the {funder}",
            "Governance and accountability",
            "What we fund and why",
            "The {funder} in brief",
            "Annual giving and where it goes",
        ),
        (
            "For more than sixty years we have supported the voluntary sector in {place}.",
            "The {funder} began as a small family trust and has grown into a major regional funder.",
            "We are an endowed foundation that gives away the income from its investments every year.",
            "Founded by a group of local business leaders, we now hold funds for more than 80 donors.",
            "We were created when two older charities in {place} merged in {year}.",
            "We are a grant-making trust with charitable status, registered in England and Wales.",
        ),
        (
            "We exist to help communities tackle {topic} on their own terms.",
            "We want a society in which no one is held back by where they were born.",
            "Our work is guided by a ten-year strategy agreed by our trustees.",
            "We believe in funding people and organisations, not only projects.",
            "Equity, trust and transparency shape every decision we make.",
            "Handing decisions to residents is central to our philosophy.",
        ),
        (
            "Our chair, {person}, has served on the board since 2018.",
            "Trustees are appointed for three-year terms and may serve two terms.",
            "Our finance and investment committee reviews our portfolio twice a year.",
            "We publish our policies on conflicts of interest, safeguarding and complaints.",
            "The team includes grants managers, a learning officer and a finance lead.",
            "Our staff and trustees reflect the diversity of the communities we fund.",
        ),
        (
            "Over our lifetime we have made more than {n} thousand grants.",
            "We publish every grant we make using the 360Giving data standard.",
            "As well as funding, we convene networks and share research with the sector.",
            "We are a founding member of a regional network of independent funders.",
            "We are happy to discuss partnerships with other funders and local government.",
            "Our giving last year came to {amount}, across {n} organisations.",
        ),
    ),
    "news": (
        (
            "Foundation commits {amount} to {place} over five years",
            "Funding round oversubscribed as demand soars",
            "{funder} names {n} grantees for {year}",
            "Youth charity secures major grant",
            "Trust pauses new funding while it reviews strategy",
            "Community groups warn of funding gap",
        ),
        (
            "On Wednesday the {funder} confirmed a five-year commitment to groups working on {topic}.",
            "The trust received more than 900 applications, three times as many as it could fund, its director said.",
            "A charity working with young people in {place} has been awarded {amount} to expand its services.",
            "The foundation said it would stop taking new applications for six months while it consulted partners.",
            "Dozens of community organisations have written to the council warning that services may close.",
            "Last week's announcement was the biggest single commitment in the trust's history.",
        ),
        (
            '"It means we can keep our doors open for another three years," said {person}, who runs the project.',
            '"The need out there is enormous," the foundation\'s {role}, {person}, told the local paper.',
            "A spokesperson for the council said it was working closely with funders to fill the gap.",
            '"We know this pause is frustrating," the trust said in a statement on its website.',
            "{person}, who founded the charity a decade ago, described the news as a turning point.",
            "Volunteers gathered on Friday to mark the award with a celebration at the community centre.",
        ),
        (
            "The grant will pay for two new youth workers and a minibus.",
            "Other funders are expected to follow with announcements later this year.",
            "The foundation was itself set up with a donation from a local entrepreneur in the 1990s.",
            "Last year the trust gave away {amount}, a rise of a fifth on the year before.",
            "Applicants who missed out are being signposted to other sources of support.",
            "The programme was first launched as a pilot in {place} three years ago.",
        ),
    ),
    "event": (
        (
            "Meet the funder: live Q&A with our grants team",
            "Masterclass: telling the story of your impact",
            "Regional funding roadshow comes to {place}",
            "Summit {year}: community wealth and local giving",
            "Drop-in surgery for {programme} applicants",
            "Breakfast briefing: new funding opportunities",
        ),
        (
            "The session starts at 11am on {date} and finishes at 12.30pm.",
            "Doors open at 6pm on {date}; the talks begin at 6.30pm.",
            "This event is online; the link will be sent when you sign up.",
            "When: {date}, all day. Where: the Assembly Rooms, {place}.",
            "On {date} the tour stops in {place}, running one session before lunch and one after.",
            "Each surgery slot lasts 30 minutes and runs on Zoom or by phone.",
        ),
        (
            "Sign up on our events page to secure a place; numbers are capped at 40.",
            "Attendance is free but you must register in advance.",
            "Register by {date}; we will send joining details and an agenda.",
            "Let us know about any dietary or access needs when booking.",
            "A waiting list opens when all places have gone.",
            "Book one slot per organisation, please, so that more groups can come.",
        ),
        (
            "The programme includes a panel discussion, breakout groups and a networking lunch.",
            "Our facilitator, {person}, will walk you through real examples and exercises.",
            "Guest speakers from three funders will share what they look for in a proposal.",
            "Slides and a recording will be shared with everyone who registers.",
            "You will leave with a checklist and templates to use in your own bids.",
            "The day closes with drinks and a chance to meet other local groups.",
        ),
    ),
    "report": (
        (
            "Looking back on {year}",
            "External assessment of the {programme}: conclusions",
            "What changed in {year}: results",
            "Research report: understanding {topic}",
            "Trustees' report and financial statements",
            "Award statistics, {year} edition",
        ),
        (
            "The review covers the twelve months to 31 December {year} and our work across {place}.",
            "Researchers from a university partner examined whether the scheme delivered what it promised.",
            "This analysis looks at every grant we made over the last five years.",
            "The board sets out its stewardship of the charity's money in the pages that follow.",
            "We asked grantees and applicants about their experience, and this report sets out what they told us.",
            "The research used a mixed-methods design with a literature review and field interviews.",
        ),
        (
            "Overall, 82% of funded projects reported lasting change for participants.",
            "Expenditure on charitable activities rose to {amount}, while reserves fell slightly.",
            "Chart 4 compares the size of awards across regions over the period.",
            "The evidence suggests that longer grants lead to stronger organisations.",
            "Respondents valued flexibility, quick decisions and light reporting above all.",
            "The evaluation concludes that the programme achieved most of its aims.",
        ),
        (
            "A summary of the findings is available in plain English.",
            "Download the report and the accompanying dataset.",
            "Appendix B describes the survey sample and the response rate.",
            "The auditors' statement is on page 34.",
            "Our next steps and commitments are listed at the end of the report.",
            "Paper versions can be posted to you free of charge.",
        ),
    ),
    "job_posting": (
        (
            "Grants Assistant (maternity cover)",
            "Open roles: {funder} staff team",
            "Apply to join our board as a trustee",
            "Senior Programme Officer, {programme}",
            "Research Officer, evidence and learning (permanent)",
            "Recruitment: Volunteer Coordinator",
        ),
        (
            "Salary: {amount2} to {amount} a year depending on experience, plus benefits.",
            "Part-time, 3 days a week, based in {place} with some home working.",
            "This post is funded for two years in the first instance.",
            "Perks: generous holiday, a matched pension scheme and a personal development allowance.",
            "Full-time permanent role; the salary band is under review.",
            "The board role is unpaid and takes about one day a month.",
        ),
        (
            "The role holder will process grant payments and keep our records accurate.",
            "You will line-manage two officers and oversee the assessment of applications.",
            "We need someone confident with spreadsheets, databases and reporting.",
            "In this job you will recruit, train and support our volunteers.",
            "You will bring strong judgement and the ability to explain complex ideas simply.",
            "The ideal candidate will share our values and our commitment to equity.",
        ),
        (
            "Submit your application through our recruitment portal before {date}.",
            "Shortlisted candidates will be contacted within a week of the closing date.",
            "Tell us in a supporting statement how you meet the person specification.",
            "We do not accept CVs without a completed application form.",
            "Selection days are pencilled in for {date}.",
            "For the recruitment pack or a chat about the post, email jobs@{slug}.example.",
        ),
    ),
    "irrelevant": (
        (
            "Car insurance quotes",
            "School term dates",
            "Gym membership options",
            "Wedding venue hire",
            "How to reset your router",
            "Concert listings",
            "Best hiking boots reviewed",
            "Parking permits",
            "Unit trust annual statement",
            "Knitting pattern: a simple scarf",
        ),
        (
            "Compare cover from over forty insurers in two minutes.",
            "The autumn term starts on the first Wednesday of September.",
            "Choose a monthly plan or pay as you go for classes and the pool.",
            "Our barn seats 120 guests and the gardens are perfect for photos.",
            "Switch the router off at the wall, wait thirty seconds and switch it back on.",
            "The orchestra plays Brahms and Elgar at the cathedral on Saturday night.",
            "We tested twelve pairs of boots on muddy trails over three months.",
            "Residents can apply online for a permit to park in their zone.",
            "The trust's units rose in value and a final income distribution was paid.",
            "Cast on 40 stitches and knit every row until the scarf is long enough.",
        ),
        (
            "Add a named driver to see how your premium changes.",
            "Inset days are listed on the school calendar.",
            "Freeze your membership for up to three months a year.",
            "A deposit secures your date; the balance is due six weeks before.",
            "If the light stays red, call our helpline.",
            "Tickets are available from the box office.",
            "Our top pick is waterproof, light and good value.",
            "A permit costs £60 a year and covers one vehicle.",
            "Statements for the year are sent to unit holders in the spring.",
            "Cast off loosely and weave in the ends.",
        ),
    ),
}

TRAINING_ONLY_INTL: dict[str, Sections] = {
    "grant_opportunity": (
        (
            "Förderaufruf {year}: {programme}",
            "Subventions {year} : {programme}",
            "Subvenciones para asociaciones: {programme}",
            "Jetzt Förderung beantragen",
            "Candidatez à l'appel {programme}",
            "Solicita tu ayuda",
        ),
        (
            "Die {funder} unterstützt Initiativen mit Zuschüssen von bis zu {amount}. Bewerbungsschluss ist der "
            "{date}.",
            "La {funder} accorde des subventions aux associations qui agissent contre {topic}. Clôture le {date}.",
            "La {funder} financia proyectos sociales con hasta {amount}. La convocatoria cierra el {date}.",
            "Gefördert werden Personal- und Sachkosten für Projekte mit einer Laufzeit von bis zu zwei Jahren.",
            "Le montant de l'aide est plafonné à {amount} par projet.",
            "Se financiarán proyectos con una duración máxima de dos años.",
        ),
        (
            "Bewerben können sich gemeinnützige Vereine, Stiftungen und Initiativen.",
            "Les dossiers de candidature sont à déposer sur notre plateforme en ligne.",
            "Pueden solicitar la ayuda entidades sin ánimo de lucro con sede en la región.",
            "Die Antragsunterlagen finden Sie in unserem Förderportal.",
            "Les associations doivent avoir au moins un an d'existence.",
            "Las solicitudes se valorarán según los criterios de la convocatoria.",
        ),
    ),
    "funder_profile": (
        (
            "Unsere Geschichte",
            "La fondation",
            "Sobre nosotros",
            "Wer wir sind",
            "Nos missions",
            "Misión y valores",
        ),
        (
            "Seit ihrer Gründung im Jahr 1972 fördert die Stiftung Bildung und Kultur in der Region.",
            "Depuis sa création, la fondation soutient la solidarité et la culture.",
            "Desde su creación, la fundación impulsa la inclusión social y la educación.",
            "Der Vorstand wird vom Kuratorium für vier Jahre gewählt.",
            "La fondation est dirigée par un conseil d'administration bénévole.",
            "La fundación está dirigida por un patronato independiente.",
        ),
    ),
    "news": (
        (
            "Stiftung unterstützt {n} Initiativen",
            "{n} projets soutenus par la {funder}",
            "La {funder} apoya a {n} entidades",
            "Fördergelder für Vereine vergeben",
            "Remise des subventions à la mairie",
            "Entregadas las ayudas a las asociaciones",
        ),
        (
            "Am Montag gab die {funder} bekannt, dass {n} Projekte gefördert werden. Das teilte ein Sprecher mit.",
            "Lundi, la {funder} a annoncé le soutien de {n} projets, selon un communiqué.",
            "El lunes la {funder} anunció el apoyo a {n} proyectos, según informó en un comunicado.",
            "Bei einer Feier am Wochenende wurden die Urkunden an die Vereine überreicht.",
            "Les lauréats ont été reçus samedi lors d'une cérémonie.",
            "Los representantes de las entidades recogieron ayer los diplomas.",
        ),
    ),
    "irrelevant": (
        (
            "Warenkorb",
            "Mentions légales",
            "Horario de apertura",
            "Impressum",
            "Recette de la tarte aux pommes",
            "Previsión del tiempo",
        ),
        (
            "Ihr Warenkorb ist leer. Jetzt einkaufen und Versandkosten sparen.",
            "Ce site est édité par une société au capital de 10 000 euros.",
            "La tienda abre de lunes a sábado de nueve a ocho.",
            "Angaben gemäß Telemediengesetz: verantwortlich für den Inhalt ist die Redaktion.",
            "Étalez la pâte, disposez les pommes et enfournez pendant trente minutes.",
            "Mañana habrá cielos despejados y temperaturas en ascenso.",
        ),
    ),
}
