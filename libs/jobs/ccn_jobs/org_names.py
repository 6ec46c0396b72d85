"""Organisation names reduced to what identifies them, for comparing across sources.

"The Bill & Melinda Gates Foundation, Inc." and "BILL AND MELINDA GATES FOUNDATION" are one
name. Legal forms (Inc., Ltd, gGmbH, e.V., CIO...) say nothing about which organisation it is
and are dropped. Kinds (Foundation, Trust, Fund...) are kept apart rather than dropped: the
Nuffield Foundation and the Nuffield Trust are two funders, as are the Joseph Rowntree
Foundation and the Joseph Rowntree Charitable Trust, so two names whose kinds differ are
different names unless other evidence joins them."""

from __future__ import annotations

from dataclasses import dataclass

from ccn_jobs.places import fold

# legal forms, folded, as whole words or word sequences at the end or anywhere ("X Inc. Foundation")
LEGAL_FORMS = frozenset(
    {
        "inc", "incorporated", "llc", "l l c", "ltd", "limited", "plc", "corp", "corporation", "co",
        "company", "lp", "llp", "pbc", "nfp", "gmbh", "ggmbh", "ev", "e v", "ag", "sa", "sas", "sarl",
        "srl", "spa", "bv", "nv", "vzw", "asbl", "ab", "oy", "cic", "cio", "scio", "aisbl",
        "stiftung", "fondation", "fundacion", "fundacao", "fundacio", "fondazione", "stichting", "fonden",
        "fondet", "saatio", "fundacja",
    }
)  # fmt: skip
# German and Scandinavian names write the kind into the last word: "VolkswagenStiftung"
COMPOUND_ENDINGS = ("stiftung", "fonden", "fondet")
# Continental "Stiftung"/"Fondation" are both a legal form and a kind; as legal forms they
# line up "Robert Bosch Stiftung" with "Robert Bosch Foundation".
KINDS = frozenset(
    {
        "foundation", "trust", "fund", "endowment", "charitable trust", "charity", "council", "society",
        "institute", "association", "trustees", "philanthropies", "philanthropy", "fellowship",
    }
)  # fmt: skip
# spellings of one word, folded to one
SYNONYMS = {
    "united kingdom": "uk", "united states": "us", "usa": "us", "saint": "st", "centre": "center",
    "organisation": "organization", "programme": "program", "mt": "mount",
}  # fmt: skip
STOP_WORDS = frozenset({"the", "of", "for", "and", "a", "an", "in", "on", "de", "der", "die", "la", "le", "du"})


@dataclass(frozen=True, slots=True)
class OrgName:
    full: str  # folded, "&" as "and", "The" and legal forms dropped: "bill and melinda gates foundation"
    core: str  # `full` without kinds: "bill and melinda gates"
    kinds: frozenset[str]  # {"foundation"}
    acronym: str  # initials of the core's significant words: "bmg"
    full_acronym: str  # initials of all of `full`'s significant words: "bmgf"


def normalise(name: str) -> OrgName:
    words = _with_synonyms(_without_legal_forms(_split_compounds(fold(name.replace("&", " and ")).split())))
    while words and words[0] == "the":
        words = words[1:]
    full = " ".join(words)
    kinds: set[str] = set()
    core_words: list[str] = []
    index = 0
    while index < len(words):
        pair = " ".join(words[index : index + 2])
        if pair in KINDS:
            kinds.add(pair)
            index += 2
            continue
        if words[index] in KINDS:
            kinds.add(words[index])
        else:
            core_words.append(words[index])
        index += 1
    core = " ".join(core_words) or full
    acronym = "".join(word[0] for word in core_words if word not in STOP_WORDS)
    full_acronym = "".join(word[0] for word in words if word not in STOP_WORDS)
    return OrgName(full=full, core=core, kinds=frozenset(kinds), acronym=acronym, full_acronym=full_acronym)


def _split_compounds(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        ending = next((e for e in COMPOUND_ENDINGS if word.endswith(e) and len(word) > len(e) + 2), None)
        out += [word[: -len(ending)], ending] if ending else [word]
    return out


def _with_synonyms(words: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    while index < len(words):
        pair = " ".join(words[index : index + 2])
        if pair in SYNONYMS:
            out.append(SYNONYMS[pair])
            index += 2
        else:
            out.append(SYNONYMS.get(words[index], words[index]))
            index += 1
    return out


def _without_legal_forms(words: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(words):
        if " ".join(words[index : index + 3]) in LEGAL_FORMS:
            index += 3
        elif " ".join(words[index : index + 2]) in LEGAL_FORMS:
            index += 2
        elif words[index] in LEGAL_FORMS and (index > 0 or len(words) == 1):
            index += 1  # a leading "Co" or "AB" is more likely part of the name
        else:
            kept.append(words[index])
            index += 1
    return kept or words
