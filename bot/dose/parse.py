"""Reading dosing facts from a question: deterministic patterns, no ML.

A question is normalized (Unicode NFKC, dashes, a few known misspellings and edit-distance typo
correction against the rule file's vocabulary), then scanned for *mentions*: reactions (the rule file's
synonyms and acronyms), flags such as suspected SCARs, grades ("grade 3", "G3", "Gr 3", "grade III",
"grade three"), the tables' severity words (mild 1, moderate 2, severe 3, life-threatening 4), lab
multiples ("CPK 15x ULN", "CK 11 times the upper limit of normal", "creatinine 1.8× baseline"), acute
kidney injury and symptoms, each possibly negated ("no AKI", "asymptomatic", "SJS ruled out"). Mentions
are attached to the nearest reaction (labs and AKI to the reaction whose rows use them) to give one
:class:`Reading` per reaction. Follow-up questions fill missing facts from earlier turns.

Reading facts never depends on instructions written in the question: only the patterns above are read.

Decisions on ambiguity (documented in docs/dose_engine.md):
* Acute kidney injury or a creatinine multiple without a named reaction is not assumed to be
  rhabdomyolysis: the reading has no reaction, so the engine asks which reaction and shows the
  rhabdomyolysis rows that use these facts.
* "Creatinine normal / unchanged / at baseline" and "CPK normal" are read as 1× (baseline / ULN).
* A bound ("CPK >10x ULN"), a value in units ("CPK 4500 U/L", "creatinine 1.8 mg/dL") or the wrong
  reference ("creatinine 2x ULN") is not converted: it becomes a problem and the engine asks for the
  multiple the source's criterion uses.
* Two different values for one fact of one reaction (grade 3 or 4) become a problem too.
* Named symptoms (jaundice, RUQ pain, nausea, ...) are read as "symptomatic"; "feels well" as not.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from bot.dose.engine import Problem
from bot.dose.facts import FIELDS, Bound, Facts, format_number
from bot.dose.rules import RuleSet, compare
from bot.textdist import DeleteIndex, osa_distance

# ---- patterns (on lower-cased, normalized text) --------------------------------------------------------
_NUMWORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
}
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
_GRADE_NUM = r"(?:\d{1,3}(?:\.\d+)?|viii|vii|vi|iv|ix|v|iii|ii|i|x|zero|one|two|three|four|five|six|seven)"
_GRADE_RE = re.compile(
    rf"(?<![\w])(?:ctcae\s+)?(?:grades?|gr\.?|g(?=\d))\s*(?:[-:#=]\s*)?(?P<a>{_GRADE_NUM})(?![\w])"
    rf"(?:(?:\s*(?:-|/|,)\s*|\s+(?:or|to|and|&)\s+)(?P<b>{_GRADE_NUM})(?![\w]))?"
)
# "her eye side effect is level 4" in lay words: a grade, only when "level N" is said of the reaction
# itself (never "CK level 4", "pain level 4 out of 10", "a level 2 hospital"; "stage" is cancer staging)
_LEVEL_RE = re.compile(
    r"(?<![\w])level\s+(?P<a>[1-4])(?![\w%×]|[.,]\d|\s*(?:out\s+of|/\s*\d|x|times|fold|-fold|u/l|iu|mg|µmol|umol)(?![a-z]))"
)
_LEVEL_LEAD_RE = re.compile(
    r"(?<![\w])(?:side[\s-]*effects?|reactions?|toxicit(?:y|ies)|tox|problem|rash|event|it|this|that)\s+"
    r"(?:(?:is|was|'s|now|at|of|reached|been)\s+){1,3}(?:a\s+)?$"
)
# A grade the reaction has come back to ("now back to grade 1 after holding", "resolved to G1"): the
# current state, not the grade the table's row is chosen by (the row says "withhold until Grade ≤ 1").
_RESOLVED_RE = re.compile(
    r"(?<![\w])(?:back|down|improved|improving|resolved|resolving|recovered|settled|dropped|decreased|"
    r"came\s+down|went\s+down|gone\s+down)\s+(?:now\s+)?(?:to|at)\s+(?:a\s+|an\s+)?$"
)
# "derm graded it 3", "graded as a 2": the grade given by whoever graded it
_GRADED_RE = re.compile(
    r"(?<![\w])(?:graded|classed|classified)\s+(?:(?:it|this|that|her|him|them|the\s+\w+)\s+)?"
    r"(?:(?:as|at)\s+)?(?:an?\s+)?(?P<a>[1-5]|one|two|three|four)(?![\w%×]|[.,]\d|\s*(?:out\s+of|/\s*\d|x|times|fold)(?![a-z]))"
)
_GRADE_BOUND_RE = re.compile(r"(?<![\w])(?:grades?|gr\.?|g)\s*(?:>=|<=|≥|≤|>|<)\s*\d")
_SEVERITY_RE = re.compile(r"(?<![\w])(mild(?:ly)?|moderate(?:ly)?|severe(?:ly)?|life[\s-]*threat\w*)(?![\w])")
_SEVERITY = {"mild": 1, "moderate": 2, "severe": 3, "life": 4}
_HOW_RE = re.compile(r"how\s+$")

_RATIO_NUM = r"(?:[-+]?\d{1,6}(?:[.,]\d{1,3})?|" + "|".join(sorted(_NUMWORDS, key=len, reverse=True)) + ")"
_CMP = (
    r"(?:>=|<=|≥|≤|>|<|more\s+than|greater\s+than|higher\s+than|over|above|at\s+least|less\s+than|under|"
    r"below)"
)
_REF = r"(?:uln|upper\s+limits?(?:\s+of\s+normal)?|normal|baseline|b/l|bl)"
_RATIO_RE = re.compile(
    rf"(?<![\w.])(?:(?P<cmp>{_CMP})\s*)?(?P<num>{_RATIO_NUM})\s*(?:x|×|times|-?\s?fold)"
    rf"(?:\s*(?:the\s+|of\s+(?:the\s+)?|over\s+(?:the\s+)?)?(?P<ref>{_REF}))?(?![\w])"
)
_PERCENT_RE = re.compile(
    r"(?<![\w.])(?:(?:up|increased?|rise|risen|rose|elevated)\s+(?:by\s+)?)?(?P<num>\d{1,4}(?:\.\d+)?)\s*%"
    r"(?:\s*(?:above|over|increase|rise|higher\s+than|from|up\s+from)\s*(?:the\s+)?(?:baseline|b/l)?)?"
)
_RATIO_WORD_RE = re.compile(
    rf"(?<![\w])(?:ratio|multiple)(?:\s+(?:to|of|vs\.?|over)\s+(?:the\s+)?(?P<ref>{_REF}))?"
    r"\s*(?:of|=|:|is|was|now)?\s*(?P<num>\d{1,6}(?:\.\d{1,3})?)(?![\w%×]|\.\d)"
)
# A reference value written out ("ULN 300", "upper limit of normal is 170", "baseline 0.9"): with a value
# in units of the same lab ("CPK 4200 U/L") it gives the multiple the source's criteria use.
_REF_VALUE_RE = re.compile(
    r"(?<![\w])(?P<ref>uln|upper\s+limits?(?:\s+of\s+normal)?|normal\s+(?:up\s+to|to|is\s+up\s+to|below|<)|baseline|b/l)"
    r"(?:\s+(?:serum\s+)?(?:creatinine|creat|cr|scr))?\s*(?:value\s+)?"
    r"(?:is|was|of|=|:|at)?\s*(?P<num>\d{1,6}(?:\.\d{1,3})?)(?![\w%×]|\.\d|\s*(?:x|×|times|fold)(?![a-z]))"
)
# A value taken back in the same breath ("grade 3, not grade 2", "3 rather than 2"): not a fact.
# A reference range written out ("(ref 30-190)", "normal range 30–190"): its upper end is the ULN.
_RANGE_RE = re.compile(
    r"(?<![\w])(?:ref(?:erence)?(?:\s+range)?|normal(?:\s+range)?|range|rr|nr)\s*[:=]?\s*"
    r"(?P<lo>\d{1,6}(?:\.\d{1,3})?)\s*(?:-|–|—|to)\s*(?P<num>\d{1,6}(?:\.\d{1,3})?)(?![\w%×]|\.\d)"
)
# A percentage of the ULN ("CK 1200% of ULN"): a multiple of ULN.
_PCT_ULN_RE = re.compile(
    r"(?<![\w.,])(?P<num>\d{1,3}(?:,\d{3})+|\d{1,6}(?:\.\d{1,3})?)\s*%\s*(?:of\s+)?(?:the\s+)?"
    r"(?:uln|upper\s+limit(?:\s+of\s+normal)?)(?![\w])"
)
# A level written as a share of the baseline ("creatinine is 150% of baseline"): 1.5× — not a 150% rise.
_PCT_OF_BASELINE_RE = re.compile(
    r"(?<![\w.,])(?P<num>\d{1,4}(?:\.\d+)?)\s*%\s*of\s+(?:the\s+|her\s+|his\s+|their\s+)?(?:baseline|b/l)(?![\w])"
)
# A baseline value and the value now ("baseline 70 umol/L now 125", "0.8 -> 1.4 mg/dL"): their ratio is
# the multiple of baseline (read next to creatinine only).
_BASE_NOW_RE = re.compile(
    r"(?<![\w])baseline\s*(?:was\s+|of\s+|=\s*|:\s*)?(?P<a>\d{1,6}(?:\.\d{1,3})?)\s*(?:[a-zµμ/]+\s*)?[,;]?\s*"
    r"(?:and\s+)?(?:now|currently|today|->|→|=>)\s*(?:is\s+|at\s+)?(?P<b>\d{1,6}(?:\.\d{1,3})?)(?![\w%×]|\.\d)"
)
_AT_BASELINE_RE = re.compile(
    r"(?<![\w.])(?P<a>\d{1,6}(?:\.\d{1,3})?)\s*(?:[a-zµμ/]+\s*)?(?:at|was)\s+baseline\s*(?:,|;|and)?\s*(?:now\s+|today\s+)?"
    r"(?:is\s+)?(?P<b>\d{1,6}(?:\.\d{1,3})?)(?![\w%×]|\.\d)"
)
_ARROW_RE = re.compile(
    r"(?<![\w.])(?P<a>\d{1,6}(?:\.\d{1,3})?)\s*(?:[a-zµμ/]+\s*)?(?:->|→|=>|-->)\s*(?P<b>\d{1,6}(?:\.\d{1,3})?)(?![\w%×]|\.\d)"
)
# A follow-up that adds a reaction to the earlier ones ("also", "both", "as well"): all are decided.
_ALSO_RE = re.compile(r"(?<![\w])(?:also|as\s+well|in\s+addition|additionally|both|too)(?![\w])", re.I)
_RETRACTED_RE = re.compile(
    r"(?:(?<![\w])not|n't|(?<![\w])rather\s+than|(?<![\w])instead\s+of)\s*(?:an?\s+)?$"
)
_FOLD_WORD_RE = re.compile(r"(?<![\w])(doubled|tripled)(?![\w])")
# A share of the body surface ("40% BSA", "30% of her body"): the extent of a skin reaction, never a lab value.
_BSA_RE = re.compile(
    r"(?<![\w.])\d{1,3}(?:\.\d+)?\s*%\s*(?:of\s+(?:the\s+|her\s+|his\s+|their\s+|my\s+)?)?"
    r"(?:bsa|body[\s-]+surface(?:[\s-]+area)?|tbsa|body|skin|surface)(?![\w])"
)
_STATE_RE = re.compile(
    r"(?<![\w])(within\s+normal\s+limits|wnl|normal|unchanged|stable|at\s+baseline|not\s+elevated|"
    r"(?:the\s+)?same\s+as\s+(?:the\s+|her\s+|his\s+)?(?:baseline|b/l|before)|"
    r"not\s+raised|not\s+increased)(?![\w])"
)
_FILLER_RE = re.compile(
    r"\s*(?:(?:is|was|are|level|levels|value|now|still|remains|remained|stays|back|has\s+been|only)\s+)*"
)
_STATE_BEFORE_RE = re.compile(r"(?<![\w])(?:normal|unchanged|stable|baseline)\s+(?:serum\s+)?$")
_ABS_RE = re.compile(
    r"(?<![\w.])(?P<num>\d{1,6}(?:[.,]\d{1,3})?)\s*(?P<unit>u/l|iu/l|units?/l|units|mg/dl|µmol/l|umol/l|μmol/l|mmol/l)"
)
_BARE_RE = re.compile(
    r"\s*(?:(?:level|levels|value|has|have|had|is|was|are|of|at|=|:|now|reached|went|gone|rose|risen|"
    r"increased|climbed|up|to|only|still)(?![a-z])\s*)*(?P<num>\d{1,6}(?:[.,]\d{1,3})?)"
    r"(?![\w.%×]|\s*(?:x|×|times|fold|-fold|%)(?![a-z]))"
)
_FROM_TO_RE = re.compile(
    r"\s*(?:(?:has|have|had|is|was|went|gone|rose|risen|increased|climbed|up)\s+)*from\s+(?:(?:a\s+|her\s+|his\s+)?(?:baseline|b/l)\s+(?:of\s+)?)?"
    r"(?P<a>\d{1,6}(?:[.,]\d{1,3})?)\s*(?:[a-zµμ/]+\s+)?to\s+(?P<b>\d{1,6}(?:[.,]\d{1,3})?)"
)

_RISE_FROM_RE = re.compile(
    r"(?<![\w])from\s+(?:(?:a\s+|her\s+|his\s+)?(?:baseline|b/l)\s+(?:of\s+)?)?(?P<a>\d{1,6}(?:\.\d{1,3})?)\s*"
    r"(?:[a-zµμ/]+\s+)?to\s+(?P<b>\d{1,6}(?:\.\d{1,3})?)(?:\s*(?:umol/l|µmol/l|μmol/l|mg/dl|mmol/l))?(?![\w%×]|\.\d)"
)
_BASELINE_WORD_RE = re.compile(r"(?<![\w])(?:baseline|b/l)(?![\w])")
_CPK_TERM_RE = re.compile(r"(?<![\w])(cpk|ck|creatine\s+(?:phospho)?kinase|phosphokinase)(?![\w])")
_CREAT_TERM_RE = re.compile(r"(?<![\w])(serum\s+creatinine|creatinine|creat|s?cr)(?![\w])")
_LIVER_LAB_RE = re.compile(r"(?<![\w])(alt|ast|bilirubin|lfts?|transaminases?|liver\s+enzymes)(?![\w])")

_AKI_RE = re.compile(
    r"(?<![\w])(aki|acute\s+kidney\s+injury|acute\s+renal\s+(?:failure|injury)|kidney\s+injury|"
    r"renal\s+injury|renal\s+failure|kidney\s+failure)(?![\w])"
)
_NO_AKI_RE = re.compile(
    r"(?<![\w])(kidneys?\s+(?:are\s+|is\s+|look\s+|looks\s+)?(?:fine|ok|okay|normal|intact|unaffected|good|well)|"
    r"(?:renal|kidney)\s+function\s+(?:is\s+)?(?:normal|preserved|intact|fine|stable|ok)|"
    # "no kidney issue", "no renal problems": the kidneys said to be unaffected
    r"no\s+(?:kidney|renal)\s+(?:issues?|problems?|involvement|concerns?|damage))(?![\w])"
)
_SYMPTOM_RE = re.compile(
    r"(?<![\w])(symptomatic|symptoms?|sx|(?:ruq|abdominal|right\s+upper\s+quadrant)\s+pain|"
    r"nausea|vomiting|fatigue|malaise|pruritus|itching|dark\s+urine|anorexia)(?![\w])"
)
_GENERIC_SYMPTOM = frozenset({"symptomatic", "symptom", "symptoms", "sx"})
_NO_SYMPTOM_RE = re.compile(
    r"(?<![\w])(a-?symptomatic|asx|symptom[\s-]*free|no\s+symptoms?|without\s+symptoms?|no\s+complaints|"
    r"clinically\s+well|feel(?:s|ing)?\s+(?:completely\s+|totally\s+|perfectly\s+|entirely\s+|absolutely\s+)?"
    r"(?:well|fine|good|normal|great))(?![\w])"
)

_INTENT_RE = re.compile(
    r"(?<![\w])(with-?h[oe]ld\w*|hold(?:ing)?|held|paus\w*|interrupt\w*|stop\w*|discontinu\w*|d/c|continu\w*|"
    r"resum\w*|restart\w*|re-?challeng\w*|manag\w*|handl\w*|proceed\w*|next\s+steps?|what\s+now|keep\s+going|"
    r"stay\s+on|carry\s+on|adjust\w*|modif\w*|reduc\w*\s+(?:the\s+)?dos\w*|dos(?:e|es|ing|age)\s+"
    r"(?:change|reduction|adjustment|modification|hold|interruption|mod|adj)s?|dosing|change\s+(?:the\s+)?dose|"
    r"what\s+(?:should|do|must|can)\s+(?:i|we|you)\s+do|what\s+to\s+do|what\s+do(?=\s*\??\s*$)|"
    r"what\s+happens\s+(?:now|next)|what\s+dose|which\s+dose|"
    r"what(?:'s|\s+is|\s+are)\s+the\s+(?:recommended\s+|next\s+|right\s+)?(?:action|actions|plan|step|steps)|"
    r"(?:should|can|do|must)\s+(?:i|we|she|he|they|the\s+patient|pt)\s+(?:reduce|lower|cut|stop|hold|continue|keep|give|"
    r"dose|halve|skip)|"
    # the dose as the subject ("should his dose be lowered?", "does the dose need reducing?")
    r"(?:dose|doses|dosing)\s+(?:be|need(?:s)?\s+to\s+be|needs?|get)\s+(?:lowered|reduced|reducing|cut|changed|changing|"
    r"adjusted|held|stopped|decreased|dropped|lowering)|"
    # halving the dose herself ("cut her pills in half", "halve the dose")
    r"(?:cut|split|break)\s+(?:her|his|their|my|the)?\s*(?:pills?|tablets?|capsules?|doses?)\s+in\s+half|halve\s+\w+)(?![\w])"
)
_SOFT_VETO_RE = re.compile(
    # a trial or study asked about ("what did the trial show?"); with a stated grade or lab value the
    # question is one participant's case ("trial visit, grade 1 eye changes, dose as normal?")
    r"(?<![\w])(trials?|stud(?:y|ies)|prophyla\w*|ppx|prevent\w*|pre-?emptive|steroid\w*|corticosteroid\w*|antibiotic\w*|"
    r"mechanism\w*|moa|why|how\s+often|how\s+frequent\w*|freq\w*|schedul\w*|monitor\w*|exams?|examinations?|"
    r"check\w*|measur\w*|drawn|surveillance|assess\w*|on-?target|class\s+effect|causes?|caused|follow-?\s?up|"
    r"bloods|blood\s*(?:tests?|work|draws?)|"
    # "do we need to check …" (not "do we need to stop …": that asks for the dose action)
    r"(?:do|did)\s+(?:i|we)\s+(?:still\s+)?need\s+(?:the|a|to)(?!\s+(?:stop|hold|withhold|discontinue|pause|"
    r"interrupt|reduce|lower|continue|restart|resume|change))|"
    r"how\s+long|"
    # before any reaction ("give up front to stop the rash from happening", "an eye specialist before she
    # even starts the tablets"): prevention or pre-treatment, not a reaction to decide on
    r"up[\s-]*front|in\s+advance|(?:stop|keep)\s+(?:the\s+|a\s+|it\s+|this\s+|her\s+|his\s+)?[a-z]+\s+from\s+"
    r"(?:happening|occurring|developing|starting|coming)|before\s+(?:(?:she|he|they|we|you|i|the\s+patient|pt)\s+)?"
    r"(?:even\s+)?(?:start|starts|starting|begin|begins|beginning|commenc\w*)|before\s+(?:the\s+)?first\s+dose|"
    r"pre-?treatment|beforehand|(?:is|are|'s|will\s+be)\s+(?:starting|beginning|due\s+to\s+start)|"
    # the approach in general, not one case ("what are the general options when a pt has an AE?")
    r"in\s+general|generally|broadly|general\s+(?:options|approach|rules?|principles?))(?![\w])"
)
# Who has the reaction ("my eyes are blurry", "pt has a rash", "she developed hives"): a question about a
# patient's own reaction is a dosing question even without a dosing verb (then usually: which grade?).
_PATIENT_RE = re.compile(
    r"(?<![\w'])(my\s+(?:\w+\s+)?(?:eyes?|vision|sight|skin|muscles?|legs?|arms?|urine|pee|liver|face|chest|back)|"
    r"i(?:'ve|\s+have|\s+had|\s+got|'m|\s+am|\s+noticed|\s+developed)(?!\s+(?:a\s+|some\s+)?questions?)|"
    r"(?:patient|pt|she|he|they)\s+(?:has|have|had|is|was|with|developed|reports?|reported|complains?|got|says|said|"
    r"feels|felt|called|rang|phoned)|"
    r"(?:patient|pt|she|he|they)(?:'s|'re|\s+is|\s+are)\s+(?:having|getting|developing|experiencing)|"
    # "pt on avuto/defac, rash …": a patient on the regimen is one patient's case
    r"(?:patient|pt)\s+on(?=\s+\w)|"
    # the subject a few words before its verb ("pt on avuto/defac has …"): a bounded gap, no backtracking blow-up
    r"(?:patient|pt|she|he)\s+on\s+[^.?!]{1,40}?\s(?:has|had|is|was|developed|reports?|got)|"
    # a relative's or a specific patient's case ("my dad's liver tests", "for this patient")
    r"(?:my|our)\s+(?:mum|mom|mother|dad|father|husband|wife|partner|son|daughter|brother|sister|friend)(?:'s)?|"
    r"(?:this|my|our)\s+(?:patient|pt)|"
    r"\d{1,3}\s*(?:yo|y/o|y\.o\.|yr\s+old|years?\s+old|year-old)|"
    # a yes/no question about acting on the regimen now ("should we stop avutometinib?"): one patient's case
    r"^\W*(?:should|can|must|do|does)\s+(?:i|we|she|he|they|the\s+patient|my\s+[a-z]+)\s+(?:stop|hold|reduce|pause|interrupt|continue|restart|resume|"
    r"discontinue|withhold)|"
    r"developed|developing)(?![\w'])"
)
# A reaction named only generically ("a grade 3 toxicity", "another side effect"): no reaction is named, and
# the question does not refer back to an earlier one, so the earlier reaction is offered, never assumed.
_GENERIC_REACTION_RE = re.compile(
    r"(?<![\w])(toxicit(?:y|ies)|tox|adverse\s+(?:drug\s+)?(?:reactions?|events?|effects?)|reactions?|"
    r"side[\s-]*effects?|aes?|irae|events?|"
    # feeling unwell without naming what ("she just feels unwell"): a reaction not yet named
    r"unwell|feel(?:s|ing)?\s+(?:ill|sick|poorly|awful|terrible|rough|bad))(?![\w])"
)
# Words right before a generic noun that refer back to the reaction already discussed ("the toxicity",
# "this reaction", "her side effect"): then it is a follow-up and the earlier reaction is carried over.
_BACK_REFERENCE = frozenset(
    {"the", "this", "that", "same", "said", "its", "her", "his", "their", "current", "ongoing", "existing"}
)
# A turn that opens as a continuation ("and for a grade 2 toxicity?", "what about grade 4 tox?", "now ...")
# is elliptical: a generic noun in it still refers to the reaction discussed.
_CONTINUATION_RE = re.compile(
    r"^\W*(?:and|&|but|also|then|now|so|ok(?:ay)?|same|if|what\s+if|what\s+about|how\s+about|and\s+if)(?![\w'])"
)
_HARD_VETO_RE = re.compile(
    # a trial or study asked about (not "trial coordinator", "on a trial", "study participant" — roles and
    # settings of one patient's case)
    r"(?<![\w])(ramp[-\s]?201|frame\s+(?:study|trial)|how\s+many|proportion|participants|"
    # what a term means or how a condition is diagnosed or graded: a definition, not a dosing decision
    r"stands?\s+for|definition\s+of|ctcae\s+version|which\s+version|counts?\s+as|"
    # about a row's wording, not a patient ("in the hepatotoxicity row, does grade 3 have to be symptomatic
    # to count?", "before the table calls for any action")
    r"in\s+the\s+(?:[a-z-]+\s+){0,3}row|(?:does|do|would)\s+(?:the\s+)?(?:[a-z-]+\s+){0,2}(?:row|table)\s+"
    r"(?:cover|include|apply\s+to|count|mean)|(?:has|have|need|needs)\s+to\s+be\s+[a-z-]+\s+(?:to\s+count|before|for\s+the\s+(?:row|table))|"
    r"(?:the\s+)?table\s+(?:calls?\s+for|requires?|counts?)|"
    # asking for knowledge from outside the source
    r"(?:from\s+)?your\s+own\s+(?:knowledge|opinion|experience)|outside\s+(?:the|this)\s+(?:doc|document|source)|"
    r"how\s+(?:is|are|do\s+you|do\s+we)\s+[^?.]{0,40}?\b(?:diagnosed|defined|graded|diagnose|define))(?![\w])"
)
_HARD_VETO_CS_RE = re.compile(r"(?<![\w])(RAMP|FRAME)(?![\w])")
# Fallback for a rule file without `regimen` (the rule file names the source's drugs).
_OWN_DRUGS = frozenset({"avutometinib", "defactinib"})
_DRUG_STEM_RE = re.compile(
    r"(mab|tinib|rafenib|ciclib|parib|lisib|platin|taxel|rubicin|tecan|zomib|statin|sartan|cycline|floxacin|"
    r"mycin|cillin|prazole|parin|xaban|gatran|glutide|gliptin|lukast|dronate|olol)$"
)
_DRUG_NAMES = frozenset(
    {
        "warfarin",
        "tylenol",
        "acetaminophen",
        "paracetamol",
        "loperamide",
        "letrozole",
        "anastrozole",
        "ibuprofen",
        "aspirin",
        "metformin",
        "prednisone",
        "dexamethasone",
    }
)

# Clause boundaries (not a decimal point or comma): negation never crosses them; attaching a fact across one
# is penalized.
_CLAUSE_RE = re.compile(
    r"\.(?!\d)|[;!?\n]|,(?!\d)|:(?!\s*(?:yes|no|y|n|none|present|absent|negative|positive)\b)|—|–|\s-\s|"
    r"\s(?:but|however|although|though|while|whereas|and|plus|with|also)\s|\s[+&]\s"
)
_NEG_BEFORE = frozenset(
    {
        "no",
        "not",
        "without",
        "w/o",
        "denies",
        "denied",
        "negative",
        "absent",
        "absence",
        "free",
        "nor",
        "non",
        "never",
        "excluding",
        "excluded",
    }
)
_NEG_AFTER_RE = re.compile(
    r"^\s*(?:(?:was|is|has\s+been|been|are|were)\s+)?(?:ruled\s+out|excluded|absent|negative|not\s+present|"
    r"not\s+suspected|unlikely|not\s+seen|not\s+found)(?![\w])|^\s*[:=]?\s*(?:no|none|n)(?![\w])"
)
_NEG_WINDOW = 120  # characters read before a mention for a negation cue: far more than 4 words
# What may stand between the items of a list that one negation covers ("no SJS, TEN or DRESS").
_LIST_GAP_RE = re.compile(r"\s*(?:,|/|;)?\s*(?:(?:or|nor|and|&)\s+)?(?:(?:signs?|evidence)\s+of\s+)?")
# Reactions named together that one grade follows or precedes ("both eyes and skin grade 4", "grade 4 eye
# and skin toxicity"): the grade is each one's.
_COORD_GAP_RE = re.compile(
    r"\s*(?:,\s*(?:and\s+)?|/|&|\+|and\s+|plus\s+)\s*(?:the\s+|her\s+|his\s+|their\s+)?"
)
_COORD_TAIL_RE = re.compile(
    r"\s*(?:toxicit(?:y|ies)|tox|reactions?|side[\s-]*effects?)?\s*(?:[,:-]\s*)?(?:(?:are|is|both|all|at|were|of|each)\s+)*"
)
_SHARED_RE = re.compile(r"(?<![\w])(?:both|each|all|toxicities|reactions|side[\s-]*effects)(?![\w])")
_POS_AFTER_RE = re.compile(r"^\s*[:=]\s*(?:yes|y|present|positive)(?![\w])")

# Misspellings too short or too ambiguous for edit distance.
_TYPOS = {
    "grdae": "grade",
    "garde": "grade",
    "grae": "grade",
    "gade": "grade",
    "grdade": "grade",
    "occular": "ocular",
    "ocluar": "ocular",
    "oculer": "ocular",
    "occuler": "ocular",
    "ocualr": "ocular",
    "visal": "visual",
    "rabdo": "rhabdo",
    "rhabo": "rhabdo",
    "rhabd": "rhabdo",
    "creatinin": "creatinine",
    "creatnine": "creatinine",
    "creatinie": "creatinine",
    "creatanine": "creatinine",
    "creatininine": "creatinine",
    "steven": "stevens",
    "johnsons": "johnson",
    "livr": "liver",
    "lvier": "liver",
    "skn": "skin",
    "rahs": "rash",
    "rsh": "rash",
    "sympt": "symptomatic",
    "symp": "symptomatic",
    "asympt": "asymptomatic",
    "asymp": "asymptomatic",
    "kidny": "kidney",
    "kindey": "kidney",
    "injry": "injury",
    "billirubin": "bilirubin",
}
# Real words near a vocabulary word: never "corrected".
_PROTECTED = frozenset(
    {
        "retinol",
        "version",
        "formal",
        "visible",
        "suspend",
        "suspends",
        "several",
        "moderator",
        "moderated",
        "sympathetic",
        "symposium",
        "systematic",
        "creative",
        "creation",
        "heparin",
        "kinases",
        # next to the CTCAE / MedDRA / lay words of the rule file (peeling, bullous, blurred, papular, ...)
        "feeling",
        "feelings",
        "peeking",
        "peering",
        "peeping",
        "reeling",
        "bulbous",
        "blurted",
        "blasters",
        "popular",
    }
)
_GRAMMAR_WORDS = (
    "grade symptomatic asymptomatic symptoms jaundice creatinine baseline kidney injury acute threatening "
    "moderate severe suspected upper limit normal times toxicity transaminitis bilirubin elevated renal "
    "failure withhold discontinue continue"
).split()


# ---- records -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Mention:
    """One thing read from the text at [start, end)."""

    kind: str  # reaction | flag | grade | severity | symptom | aki | ratio | state | problem
    start: int
    end: int
    reaction: str | None = None  # reaction id (reaction, flag mentions)
    field: str = ""  # the fact it states (flag, ratio, state, problem mentions)
    number: float | None = None  # grade or multiple
    number2: float | None = None  # the second grade of a range (grade 3-4)
    flag: bool | None = None  # yes/no facts
    negated: bool = False
    message: str = ""  # problem mentions


@dataclass(frozen=True, slots=True)
class Reading:
    """The facts read for one reaction (reaction None: a fact without a named reaction)."""

    facts: Facts
    inherited: tuple[str, ...] = ()  # fields filled from earlier turns
    problems: tuple[Problem, ...] = ()  # values read that cannot be used (named in the answer)
    suggested: tuple[str, ...] = ()  # earlier turns' reactions, offered (never assumed) when none is named


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a question says about dosing: one reading per reaction, and whether it is a dosing question."""

    readings: tuple[Reading, ...]
    dosing: bool

    @property
    def facts(self) -> tuple[Facts, ...]:
        return tuple(r.facts for r in self.readings)

    @property
    def decidable(self) -> bool:
        """A dosing question that names a reaction with at least one fact of this question or an earlier
        one (a grade, a lab multiple, AKI, symptoms, suspected SCARs) — or a value the engine must ask
        about: the engine answers it (decision, no_rule or clarify), so no retrieval gate may abstain on
        it. Cheap: no rule is evaluated."""
        return self.dosing and any(
            r.facts.reaction is not None and (len(r.facts.known()) > 1 or bool(r.problems))
            for r in self.readings
        )


@dataclass(frozen=True, slots=True)
class _Turn:
    """One turn's reading before follow-up merging."""

    by_reaction: tuple[tuple[str, Facts, tuple[Problem, ...]], ...]  # in order of first mention
    loose: Facts  # facts with no reaction to attach to
    loose_problems: tuple[Problem, ...]
    strong: bool
    weak: bool
    intent: bool
    soft_veto: bool
    hard_veto: bool
    generic: bool = False  # names a reaction only generically, without referring back ("a grade 3 toxicity")
    patient: bool = False  # about someone's own reaction ("my eyes are blurry", "pt has a rash")
    retracted: tuple[str, ...] = ()  # reactions named only to be denied ("the skin, not the eyes")

    @property
    def reactions(self) -> tuple[str, ...]:
        return tuple(r for r, _f, _p in self.by_reaction)

    @property
    def has_loose(self) -> bool:
        return bool(self.loose.known()) or bool(self.loose_problems)

    def dosing(self, context: bool) -> bool:
        if self.hard_veto:
            return False
        if self.strong:
            return True
        if self.soft_veto:
            return False
        if self.reactions and (self.intent or self.weak or self.patient or context):
            return True
        # a dosing verb about one patient ("should we hold it for this patient?") asks which reaction
        return (self.weak or self.intent) and (context or self.patient)


# ---- the lexicon, compiled from the rule file ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Term:
    pattern: re.Pattern[str]
    reaction: str
    flag_field: str  # "" for a reaction synonym
    case_sensitive: bool
    common_word: bool  # an acronym that is also an English word (TEN, DRESS): skipped in all-caps text
    anchor: str = ""  # the phrase's first word: a term whose anchor is absent cannot match (cheap skip)


@dataclass(frozen=True, slots=True)
class Lexicon:
    terms: tuple[_Term, ...]
    excludes: tuple[re.Pattern[str], ...]
    vocabulary: frozenset[str]
    field_reactions: tuple[tuple[str, tuple[str, ...]], ...]  # fact -> reactions whose rows use it
    regimen: frozenset[str] = _OWN_DRUGS  # the source's own drugs (the rule file's `regimen`)
    # fact -> the (op, threshold) comparisons the rows make of it ("cpk_uln": (("gt", 10.0),))
    thresholds: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()

    def comparisons(self, name: str) -> tuple[tuple[str, float], ...]:
        for f, cs in self.thresholds:
            if f == name:
                return cs
        return ()

    def reactions_using(self, name: str) -> tuple[str, ...]:
        for f, rs in self.field_reactions:
            if f == name:
                return rs
        return ()


def _anchor(phrase: str) -> str:
    words = [w for w in re.split(r"[\s-]+", phrase.strip()) if w]
    return words[0] if words else ""


def _phrase_re(phrase: str, case_sensitive: bool) -> re.Pattern[str]:
    words = [w for w in re.split(r"[\s-]+", phrase.strip()) if w]
    body = r"[\s-]+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w]){body}(?![\w])", 0 if case_sensitive else re.IGNORECASE)


_COMMON_ACRONYMS = frozenset({"ten", "dress", "scar", "scars", "alt", "ast"})


_LEXICONS: dict[int, tuple[RuleSet, Lexicon]] = {}


def lexicon_of(rules: RuleSet) -> Lexicon:
    """The compiled lexicon of a rule set, built once per RuleSet object. Cached by identity: hashing a
    frozen RuleSet walks every rule, which cost more than the parse itself."""
    hit = _LEXICONS.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    if len(_LEXICONS) >= 8:
        _LEXICONS.clear()
    lexicon = _build_lexicon(rules)
    _LEXICONS[id(rules)] = (rules, lexicon)
    return lexicon


def _build_lexicon(rules: RuleSet) -> Lexicon:
    terms: list[_Term] = []
    vocab: set[str] = set(_GRAMMAR_WORDS)
    for rx in rules.reactions:
        groups: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [("", rx.synonyms, rx.acronyms)]
        groups += [(f.field, f.synonyms, f.acronyms) for f in rx.flags]
        for flag_field, synonyms, acronyms in groups:
            for s in synonyms:
                terms.append(_Term(_phrase_re(s, False), rx.id, flag_field, False, False, _anchor(s).lower()))
                vocab.update(w.lower() for w in re.split(r"[\s-]+", s) if w.isalpha())
            for a in acronyms:
                terms.append(
                    _Term(
                        _phrase_re(a, True),
                        rx.id,
                        flag_field,
                        True,
                        a.lower() in _COMMON_ACRONYMS,
                        _anchor(a),
                    )
                )
    excludes = tuple(_phrase_re(e, False) for rx in rules.reactions for e in rx.exclude)
    field_reactions = tuple(
        (f, tuple(rx.id for rx in rules.reactions if f in rules.fields_of(rx.id))) for f in FIELDS
    )
    compared: dict[str, dict[tuple[str, float], None]] = {}
    for rule in rules.rules:
        for alt in rule.when:
            for c in alt.constraints:
                if c.op != "eq":
                    compared.setdefault(c.field, {})[(c.op, float(c.value))] = None
    thresholds = tuple((f, tuple(cs)) for f, cs in sorted(compared.items()))
    return Lexicon(
        tuple(terms),
        excludes,
        frozenset(vocab),
        field_reactions,
        frozenset(rules.regimen) or _OWN_DRUGS,
        thresholds,
    )


# A question naming reactions more often than this is read by its first mentions only (cost cap, issue 9).
MAX_REACTION_MENTIONS = 32
# NFKC can turn one character into 18 (U+FDFA): the normalized text read is cut at this length (twice the
# longest question), so the scan stays linear in the question with a fixed cap.
MAX_NORMALIZED_CHARS = 4000


# ---- normalization and typo correction -----------------------------------------------------------------
@lru_cache(maxsize=8)
def _vocabulary_index(vocabulary: frozenset[str]) -> DeleteIndex:
    """Symmetric-delete index (two deletions) of the vocabulary's words of 7 letters or more."""
    return DeleteIndex(sorted(t for t in vocabulary if len(t) >= 7), depth=2)


@lru_cache(maxsize=4096)
def _correct_word(word: str, vocabulary: frozenset[str]) -> str:
    if word in _TYPOS:
        return _TYPOS[word]
    if word in vocabulary or word in _PROTECTED or len(word) < 7 or len(word) > 30:
        return word
    best: list[tuple[int, str]] = []
    # Only words sharing a delete key can be within the edits allowed: bounded work per word (issue 9).
    for target in _vocabulary_index(vocabulary).candidates(word, 2 if len(word) >= 10 else 1):
        limit = 2 if min(len(word), len(target)) >= 10 else 1
        d = osa_distance(word, target, limit)
        if d <= limit:
            best.append((d, target))
    if not best:
        return word
    best.sort()
    if len(best) > 1 and best[0][0] == best[1][0]:
        return word  # ambiguous
    return best[0][1]


def normalize(text: str, vocabulary: frozenset[str]) -> tuple[str, str]:
    """(lower-case text, the same text keeping its case): NFKC-normalized, dashes unified and misspelled
    words corrected (in both, so positions in one are positions in the other)."""
    text = unicodedata.normalize("NFKC", text)[:MAX_NORMALIZED_CHARS]  # NFKC may expand a character 18x
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text).replace("\u00a0", " ")
    low_chars = [c.lower() if len(c.lower()) == 1 else c for c in text]
    low = "".join(low_chars)
    out_low: list[str] = []
    out_cs: list[str] = []
    pos = 0
    for m in re.finditer(r"[a-z][a-z'/]*[a-z]|[a-z]", low):
        word = m.group(0)
        fixed = _correct_word(word, vocabulary)
        if fixed != word:
            out_low.append(low[pos : m.start()])
            out_cs.append(text[pos : m.start()])
            out_low.append(fixed)
            out_cs.append(fixed)
            pos = m.end()
    out_low.append(low[pos:])
    out_cs.append(text[pos:])
    return "".join(out_low), "".join(out_cs)


# ---- scanning ------------------------------------------------------------------------------------------
def _num(token: str) -> float:
    token = token.strip().lower()
    if token in _NUMWORDS:
        return float(_NUMWORDS[token])
    if token in _ROMAN:
        return float(_ROMAN[token])
    if _THOUSANDS_RE.fullmatch(token):  # "4,800 U/L": a thousands separator, not a decimal comma
        return float(token.replace(",", ""))
    return float(token.replace(",", "."))


_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+")
# A fact stated as not known yet ("haven't assessed symptoms yet", "symptoms unknown"): asked back,
# never assumed either way.
_UNKNOWN_STATE_RE = re.compile(
    r"(?<![\w])(?:(?:haven'?t|have\s+not|hasn'?t|has\s+not|not\s+yet|not\s+been|yet\s+to\s+be|still\s+to\s+be)"
    r"\s+(?:been\s+|yet\s+)?(?:assessed|checked|evaluated|examined|asked|known|sure)|unknown|not\s+sure|unsure|unclear|"
    r"(?:don'?t|do\s+not|doesn'?t|does\s+not)\s+know\s+(?:if|whether))(?![\w])"
)


def _clause_bounds(low: str) -> list[int]:
    """Sorted positions of clause separators."""
    return [m.start() for m in _CLAUSE_RE.finditer(low)]


def _separators_between(bounds: Sequence[int], a: int, b: int) -> int:
    lo, hi = (a, b) if a <= b else (b, a)
    return max(0, bisect.bisect_left(bounds, hi) - bisect.bisect_left(bounds, lo))


def _clause_start(bounds: Sequence[int], pos: int) -> int:
    k = bisect.bisect_left(bounds, pos)
    return bounds[k - 1] + 1 if k else 0


def _clause_end(bounds: Sequence[int], pos: int, n: int) -> int:
    k = bisect.bisect_left(bounds, pos)
    return bounds[k] if k < len(bounds) else n


def _negated(low: str, bounds: Sequence[int], start: int, end: int) -> bool | None:
    """True if negated, False if affirmed ("AKI: yes"), None if neither."""
    after = low[end : _clause_end(bounds, end, len(low)) + 1][:40]
    if _POS_AFTER_RE.match(after):
        return False
    if _NEG_AFTER_RE.match(after):
        return True
    # The 4 words before, within the clause: a bounded window (a word cut at its edge is dropped), so the
    # cost does not grow with the length of a clause.
    lo = max(_clause_start(bounds, start), start - _NEG_WINDOW)
    before = low[lo:start]
    words = re.findall(r"[a-z/]+", before)
    if words and lo > 0 and lo == start - _NEG_WINDOW and low[lo - 1].isalpha() and before[:1].isalpha():
        words = words[1:]
    words = words[-4:]
    return True if any(w in _NEG_BEFORE for w in words) else None


def _mostly_upper(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.6


def _resolve(cands: list[Mention]) -> list[Mention]:
    """Non-overlapping mentions: at each overlap the longest wins (then the earlier)."""
    chosen: list[Mention] = []
    starts: list[int] = []  # of the chosen, sorted; their ends are sorted too (they do not overlap)
    ends: list[int] = []
    for m in sorted(cands, key=lambda m: (-(m.end - m.start), m.start)):
        k = bisect.bisect_left(starts, m.end)  # chosen[:k] start before m ends
        if k and ends[k - 1] > m.start and starts[k - 1] < m.end:
            continue
        chosen.append(m)
        starts.insert(k, m.start)
        ends.insert(k, m.end)
    return sorted(chosen, key=lambda m: m.start)


@dataclass(frozen=True, slots=True)
class _Scan:
    mentions: tuple[Mention, ...]
    labs: tuple[tuple[int, int, str], ...]  # (start, end, field or "") lab terms
    bounds: tuple[int, ...]
    intent: bool
    soft_veto: bool
    hard_veto: bool
    generic: bool = False
    patient: bool = False
    retracted: tuple[str, ...] = ()  # reactions named only to be denied ("the skin, not the eyes")
    low: str = ""  # the normalised text the mentions' offsets refer to


def _scan(question: str, lex: Lexicon) -> _Scan:
    low, cs = normalize(question, lex.vocabulary)
    bounds = tuple(_clause_bounds(low))
    cands: list[Mention] = []

    excluded = [(m.start(), m.end()) for p in lex.excludes for m in p.finditer(low)]
    upper = _mostly_upper(cs)
    for t in lex.terms:
        if t.case_sensitive and t.common_word and upper:
            continue
        text = cs if t.case_sensitive else low
        if t.anchor not in text:
            continue
        for m in t.pattern.finditer(text):
            if any(s <= m.start() and m.end() <= e for s, e in excluded):
                continue
            if t.flag_field:
                cands.append(
                    Mention("flag", m.start(), m.end(), reaction=t.reaction, field=t.flag_field, flag=True)
                )
            else:
                cands.append(Mention("reaction", m.start(), m.end(), reaction=t.reaction))
    for s, e in excluded:
        cands.append(Mention("excluded", s, e))

    for m in _GRADE_RE.finditer(low):
        a = _num(m.group("a"))
        b = _num(m.group("b")) if m.group("b") else None
        cands.append(Mention("grade", m.start(), m.end(), number=a, number2=b))
    for m in _LEVEL_RE.finditer(low):
        if _LEVEL_LEAD_RE.search(low, max(0, m.start() - 40), m.start()):
            cands.append(Mention("grade", m.start(), m.end(), number=_num(m.group("a"))))
    for m in _GRADED_RE.finditer(low):
        cands.append(Mention("grade", m.start(), m.end(), number=_num(m.group("a"))))
    for m in _GRADE_BOUND_RE.finditer(low):
        cands.append(Mention("ignored", m.start(), m.end()))
    for m in _SEVERITY_RE.finditer(low):
        if _HOW_RE.search(low[max(0, m.start() - 6) : m.start()]):
            continue
        word = re.split(r"[\s-]", m.group(1))[0].removesuffix("ly")
        cands.append(Mention("severity", m.start(), m.end(), number=float(_SEVERITY[word])))
    for m in _RATIO_RE.finditer(low):
        cands.append(_ratio_mention(m))
    for m in _RATIO_WORD_RE.finditer(low):
        cands.append(_ratio_mention(m))
    for m in _RANGE_RE.finditer(low):
        cands.append(Mention("reference", m.start(), m.end(), number=_num(m.group("num")), message="uln"))
    for m in _PCT_ULN_RE.finditer(low):
        cands.append(
            Mention(
                "ratio",
                m.start(),
                m.end(),
                field="cpk_uln",
                number=_quotient(_num(m.group("num")), 100),
                flag=True,
            )
        )
    for pattern in (_BASE_NOW_RE, _AT_BASELINE_RE, _ARROW_RE):
        for m in pattern.finditer(low):
            a, b = _num(m.group("a")), _num(m.group("b"))
            if a > 0:
                cands.append(Mention("baseline_now", m.start(), m.end(), number=_quotient(b, a)))
    # "went from 80 to 140 umol/L vs baseline": a rise from the baseline value, when the clause says so
    for m in _RISE_FROM_RE.finditer(low):
        a, b = _num(m.group("a")), _num(m.group("b"))
        clause = (_clause_start(bounds, m.start()), _clause_end(bounds, m.end(), len(low)))
        if a > 0 and _BASELINE_WORD_RE.search(low, *clause):
            cands.append(Mention("baseline_now", m.start(), m.end(), number=_quotient(b, a)))
    for m in _REF_VALUE_RE.finditer(low):
        cands.append(
            Mention("reference", m.start(), m.end(), number=_num(m.group("num")), message=m.group("ref"))
        )
    for m in _BSA_RE.finditer(low):
        cands.append(Mention("ignored", m.start(), m.end()))
    # A rise in percent or "doubled" is a creatinine multiple only next to creatinine or baseline (below).
    for m in _PERCENT_RE.finditer(low):
        cands.append(
            Mention(
                "relative",
                m.start(),
                m.end(),
                field="creatinine_baseline",
                number=_quotient(100 + float(m.group("num")), 100),
                flag="baseline" in m.group(0) or "b/l" in m.group(0),
            )
        )
    for m in _PCT_OF_BASELINE_RE.finditer(low):
        cands.append(
            Mention(
                "relative",
                m.start(),
                m.end(),
                field="creatinine_baseline",
                number=_quotient(float(m.group("num")), 100),
                flag=True,
            )
        )
    for m in _FOLD_WORD_RE.finditer(low):
        cands.append(
            Mention(
                "relative",
                m.start(),
                m.end(),
                field="creatinine_baseline",
                number=2.0 if m.group(1) == "doubled" else 3.0,
                flag=False,
            )
        )
    for m in _ABS_RE.finditer(low):
        cands.append(
            Mention("absolute", m.start(), m.end(), number=_num(m.group("num")), message=m.group("unit"))
        )
    for m in _AKI_RE.finditer(low):
        cands.append(Mention("aki", m.start(), m.end(), field="aki", flag=True))
    for m in _NO_AKI_RE.finditer(low):
        cands.append(Mention("aki", m.start(), m.end(), field="aki", flag=False, negated=True))
    for m in _SYMPTOM_RE.finditer(low):
        generic = m.group(1) in _GENERIC_SYMPTOM
        cands.append(
            Mention(
                "symptom",
                m.start(),
                m.end(),
                field="symptomatic",
                flag=True,
                message="generic" if generic else "",
            )
        )
    for m in _NO_SYMPTOM_RE.finditer(low):
        cands.append(
            Mention(
                "symptom",
                m.start(),
                m.end(),
                field="symptomatic",
                flag=False,
                message="generic",
                negated=True,
            )
        )

    # symptoms stated as not known yet ("haven't assessed symptoms yet"): a question back, not a fact
    if _UNKNOWN_STATE_RE.search(low):
        kept: list[Mention] = []
        for mn in cands:
            if (
                mn.kind == "symptom"
                and mn.message == "generic"
                and _UNKNOWN_STATE_RE.search(
                    low, _clause_start(bounds, mn.start), _clause_end(bounds, mn.end, len(low))
                )
            ):
                kept.append(
                    Mention(
                        "problem",
                        mn.start,
                        mn.end,
                        field="symptomatic",
                        message="Whether it is symptomatic is not known yet; the source's rows depend on it.",
                    )
                )
            else:
                kept.append(mn)
        cands = kept
    resolved = _resolve(cands)
    mentions: list[Mention] = []
    neutral: list[bool] = []  # per mention: neither negated nor affirmed by a cue of its own
    last_negated: Mention | None = None  # the last negated mention: a list after it shares its negation
    retracted: list[str] = []
    for mn in resolved:
        if mn.kind in ("excluded", "ignored"):
            continue
        if mn.kind in ("grade", "severity", "ratio", "relative", "absolute") and _RETRACTED_RE.search(
            low, max(0, mn.start - 16), mn.start
        ):
            continue  # "grade 3, not grade 2": the value taken back is no fact
        if mn.kind in ("grade", "severity") and _RESOLVED_RE.search(low, max(0, mn.start - 32), mn.start):
            continue  # "grade 3 … now back to grade 1": the row is chosen by the grade it reached
        negatable = mn.kind in ("reaction", "flag", "aki", "symptom") and not mn.negated
        negated = negatable and _negated(low, bounds, mn.start, mn.end)
        if (
            negatable
            and negated is None
            and last_negated is not None
            and last_negated.kind == mn.kind
            and _LIST_GAP_RE.fullmatch(low, last_negated.end, mn.start)
        ):
            negated = True  # "no SJS, TEN or DRESS": every item of the negated list
        if negatable and negated is True:
            last_negated = mn
            if mn.kind == "reaction":
                if mn.reaction:
                    retracted.append(mn.reaction)
                continue  # "no eye toxicity": not a mention of the reaction
            if mn.kind == "symptom" and mn.message != "generic":
                continue  # "no jaundice" says nothing about other symptoms
            if mn.kind == "flag" and mn.field == "symptomatic":
                continue  # the same for a symptom that names its reaction ("no jaundice")
            mn = replace(mn, flag=not mn.flag, negated=True)
        elif negatable:
            last_negated = None
        mentions.append(mn)
        neutral.append(negatable and negated is None)
    # "SJS, TEN or DRESS ruled out": a negation written after a list covers the items before it as well
    for k in range(len(mentions) - 1, 0, -1):
        cur, prev = mentions[k], mentions[k - 1]
        if (
            cur.negated
            and neutral[k - 1]
            and prev.kind == cur.kind
            and prev.kind in ("flag", "aki")
            and _LIST_GAP_RE.fullmatch(low, prev.end, cur.start)
        ):
            mentions[k - 1] = replace(prev, flag=not prev.flag, negated=True)
            neutral[k - 1] = False

    labs: list[tuple[int, int, str]] = []
    for pattern, name in (
        (_CPK_TERM_RE, "cpk_uln"),
        (_CREAT_TERM_RE, "creatinine_baseline"),
        (_LIVER_LAB_RE, ""),
    ):
        labs += [(m.start(), m.end(), name) for m in pattern.finditer(low)]
    labs.sort()
    labs = _disjoint(labs)
    mentions = _attach_lab_values(low, mentions, labs, bounds, lex.comparisons)

    hard = bool(_HARD_VETO_RE.search(low) or _HARD_VETO_CS_RE.search(cs) or _foreign_drug(low, lex.regimen))
    return _Scan(
        tuple(mentions),
        tuple(labs),
        bounds,
        intent=bool(_INTENT_RE.search(low)),
        soft_veto=bool(_SOFT_VETO_RE.search(low)),
        hard_veto=hard,
        generic=not _CONTINUATION_RE.match(low) and _names_generic_reaction(low, mentions),
        patient=bool(_PATIENT_RE.search(low)),
        retracted=tuple(dict.fromkeys(retracted)),
        low=low,
    )


def _names_generic_reaction(low: str, mentions: Sequence[Mention]) -> bool:
    """Whether the text names a reaction only by a generic noun ("a grade 3 toxicity", "side effect")
    that does not refer back ("the toxicity", "this reaction"), outside any named reaction."""
    spans = [(m.start, m.end) for m in mentions if m.kind in ("reaction", "flag")]  # sorted, disjoint
    starts = [s for s, _e in spans]
    for g in _GENERIC_REACTION_RE.finditer(low):
        k = bisect.bisect_right(starts, g.start()) - 1
        if k >= 0 and g.end() <= spans[k][1]:
            continue  # part of a named reaction ("skin toxicity")
        before = re.findall(r"[a-z']+", low[max(0, g.start() - 40) : g.start()])[-3:]
        if any(w in _BACK_REFERENCE for w in before):
            continue
        return True
    return False


def _disjoint(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Sorted spans without overlaps (an overlapping span after a kept one is dropped)."""
    out: list[tuple[int, int, str]] = []
    for span in spans:
        if not out or span[0] >= out[-1][1]:
            out.append(span)
    return out


@lru_cache(maxsize=8)
def _run_together(own: frozenset[str]) -> re.Pattern[str]:
    """The regimen's names run together ("avutometinibdefactinib")."""
    return re.compile("(?:" + "|".join(re.escape(d) for d in sorted(own, key=len, reverse=True)) + ")+")


def _misspelt_own(word: str, own: frozenset[str]) -> bool:
    """A misspelling of one of the regimen's names ("avutomatinib"): two edits at most, same first letter."""
    from bot.textdist import osa_distance

    return any(
        abs(len(word) - len(d)) <= 2 and word[0] == d[0] and osa_distance(word, d, 2) <= 2 for d in own
    )


def _foreign_drug(low: str, own: frozenset[str]) -> bool:
    joined = _run_together(own) if own else None
    for w in re.findall(r"[a-z]{5,}", low):
        if w in own or (joined is not None and joined.fullmatch(w)) or _misspelt_own(w, own):
            continue
        if w in _DRUG_NAMES or (len(w) >= 7 and _DRUG_STEM_RE.search(w)):
            return True
    return False


def _ratio_mention(m: re.Match[str]) -> Mention:
    ref = (m.group("ref") or "").replace(" ", "")
    if ref.startswith("uln") or ref.startswith("upper"):
        field_hint = "cpk_uln"
    elif ref in ("baseline", "b/l", "bl"):
        field_hint = "creatinine_baseline"
    elif ref == "normal":
        field_hint = "cpk_uln"
    else:
        field_hint = ""
    cmp = m.groupdict().get("cmp")
    return Mention(
        "ratio",
        m.start(),
        m.end(),
        field=field_hint,
        number=_num(m.group("num")),
        flag=bool(ref),  # whether the reference (ULN / baseline) was written
        message=" ".join(cmp.split()) if cmp else "",
    )


_LAB_NAME = {"cpk_uln": "CPK", "creatinine_baseline": "Serum creatinine", "": "That lab value"}
_LAB_UNIT = {"cpk_uln": "ULN", "creatinine_baseline": "baseline"}


_LAB_KEYS: tuple[str | None, ...] = (None, "cpk_uln", "creatinine_baseline")


class _LabView:
    """Lab terms (start, end, field), disjoint and sorted, with binary searches over starts and ends."""

    def __init__(self, labs: list[tuple[int, int, str]]) -> None:
        self.labs = labs
        self.starts = [lab[0] for lab in labs]
        self.ends = [lab[1] for lab in labs]

    def within(self, lo: int, hi: int) -> tuple[int, int]:
        """The index range of the labs starting in [lo, hi]."""
        return bisect.bisect_left(self.starts, lo), bisect.bisect_right(self.starts, hi)

    def nearest(self, a: int, b: int, start: int, end: int) -> tuple[int, int, str] | None:
        """Among labs[a:b]: the one ending last at or before ``start``, else the first starting at or
        after ``end``."""
        k = min(b, bisect.bisect_right(self.ends, start))
        if k > a:
            return self.labs[k - 1]
        j = max(a, bisect.bisect_left(self.starts, end))
        return self.labs[j] if j < b else None


def _attach_lab_values(
    low: str,
    mentions: list[Mention],
    labs: list[tuple[int, int, str]],
    bounds: Sequence[int],
    comparisons: Callable[[str], tuple[tuple[str, float], ...]] | None = None,
) -> list[Mention]:
    """Give each lab multiple its lab (the nearest lab term in its clause, before it first), and read
    states ("creatinine normal") and bare or unit values after lab terms as facts or problems."""
    out: list[Mention] = []
    used_spans = [(m.start, m.end) for m in mentions]
    # Lab terms are disjoint and sorted by start, so their ends are sorted too: every lookup below is a
    # binary search (attaching stays linear in the text, whatever the number of labs and values).
    views = {key: _LabView([lab for lab in labs if key is None or lab[2] in (key, "")]) for key in _LAB_KEYS}

    def nearest_lab(m: Mention) -> tuple[int, int, str] | None:
        """The nearest lab term in m's clause (before it first; else after it), from every lab term when
        none is in the clause; when the reference was written, a lab it fits (a liver test fits any)."""
        cs, ce = _clause_start(bounds, m.start), _clause_end(bounds, m.start, len(low))
        everything = views[None]
        a, b = everything.within(cs, ce)
        same = a < b
        view, (a, b) = everything, ((a, b) if same else (0, len(everything.labs)))
        if m.field and m.flag and m.field in views:
            fit = views[m.field]
            fa, fb = fit.within(cs, ce) if same else (0, len(fit.labs))
            if fa < fb:
                view, a, b = fit, fa, fb
        return view.nearest(a, b, m.start, m.end)

    # Reference values ("ULN 300", "baseline 0.9"), for values written in units: the first of each kind.
    refs: dict[str, float] = {}
    for m in mentions:
        if m.kind == "reference" and m.number:
            key = "creatinine_baseline" if m.message in ("baseline", "b/l") else "cpk_uln"
            refs.setdefault(key, m.number)
    bound_checks: list[tuple[Mention, str, float]] = []  # bounds, checked against measured values below

    for m in mentions:
        if m.kind == "reference":
            continue
        if m.kind == "baseline_now":  # a creatinine rise from its baseline (never a CPK value)
            lab = nearest_lab(m)
            if lab is not None and lab[2] == "creatinine_baseline":
                out.append(Mention("ratio", m.start, m.end, field="creatinine_baseline", number=m.number))
            continue
        if m.kind == "relative":
            lab = nearest_lab(m)
            creatinine = lab is not None and lab[2] == "creatinine_baseline"
            if creatinine or (m.flag and lab is None):  # next to creatinine, or "50% above baseline"
                out.append(Mention("ratio", m.start, m.end, field="creatinine_baseline", number=m.number))
            continue
        if m.kind == "ratio":
            lab = nearest_lab(m)
            if lab is not None and lab[2] == "":
                continue  # a liver-test multiple: the source grades hepatotoxicity, it has no lab criterion
            target = lab[2] if lab is not None else m.field
            if not target:
                continue
            num = m.number if m.number is not None else 0.0
            unit = _LAB_UNIT[target]
            if m.field and m.field != target and m.flag:
                out.append(
                    _problem(
                        m,
                        target,
                        f"{_LAB_NAME[target]} is given as {format_number(num)}× {_LAB_UNIT[m.field]}; the "
                        f"source's criterion is a multiple of {unit}. Give it as a multiple of {unit}.",
                    )
                )
                continue
            if m.message:
                bound_checks.append((m, target, num))
                continue
            out.append(Mention("ratio", m.start, m.end, field=target, number=num))
        elif m.kind == "absolute":
            lab = nearest_lab(m)
            if lab is None or lab[2] == "":
                continue
            num = m.number if m.number is not None else 0.0
            if refs.get(lab[2]):  # "CPK 4200 U/L with ULN 300": the multiple is 14
                out.append(
                    Mention("ratio", m.start, m.end, field=lab[2], number=_quotient(num, refs[lab[2]]))
                )
                continue
            out.append(
                _problem(
                    m,
                    lab[2],
                    f"{_LAB_NAME[lab[2]]} is given as {format_number(num)} {m.message}; the "
                    f"source's criterion is a multiple of {_LAB_UNIT[lab[2]]}. Give it as a multiple "
                    f"of {_LAB_UNIT[lab[2]]}.",
                )
            )
        else:
            out.append(m)
    # A bound beside the measured value it restates ("CK 14× ULN (so >10×)") adds nothing; a bound alone,
    # or one the measured value contradicts, cannot decide a row.
    for m, target, num in bound_checks:
        measured = [o.number for o in out if o.kind == "ratio" and o.field == target and o.number is not None]
        if measured and all(_satisfies(v, m.message, num) for v in measured):
            continue
        op = _BOUND_OP.get(m.message)
        if not measured and op is not None and num > 0 and comparisons:
            bound = Bound(op, num)
            if all(bound.decides(o, t) is not None for o, t in comparisons(target)):
                # "CPK > 10× ULN" quoted back: it decides every row's condition on CPK as a value would
                out.append(Mention("bound", m.start, m.end, field=target, number=num, message=op))
                continue
        unit = _LAB_UNIT[target]
        out.append(
            _problem(
                m,
                target,
                f"{_LAB_NAME[target]} is given as a bound ({m.message} "
                f"{format_number(num)}× {unit}); give the measured multiple of {unit}.",
            )
        )

    covered = bytearray(len(low) + 1)  # characters taken by a mention (a map: no pairwise comparisons)
    for s0, e0 in [(m.start, m.end) for m in out] + used_spans:
        covered[s0:e0] = b"\x01" * max(0, e0 - s0)

    def free(a: int, b: int) -> bool:
        return 1 not in covered[max(0, a) : b]

    for start, end, name in labs:
        if not name:
            continue
        ce = _clause_end(bounds, end, len(low))  # patterns below read [end, ce) in place, never a copy
        filler = _FILLER_RE.match(low, end, ce)
        state = _STATE_RE.match(low, filler.end() if filler else end, ce)
        if state and free(state.start(), state.end()):
            out.append(Mention("state", state.start(), state.end(), field=name, number=1.0))
            continue
        lead = _STATE_BEFORE_RE.search(low[max(0, start - 20) : start])
        if lead and free(start - len(lead.group(0)), start):
            out.append(Mention("state", start - len(lead.group(0)), start, field=name, number=1.0))
            continue
        span = _FROM_TO_RE.match(low, end, ce)
        if span and any(
            o.kind != "problem" and o.start < span.end("b") and span.start("a") < o.end for o in out
        ):
            continue  # read already (a rise from the baseline value)
        if span and name == "creatinine_baseline" and comparisons is not None:
            # "creatinine went from 82 to 141": the earlier value is not below the baseline, so the rise is
            # at least 141/82 times the baseline — a bound, a fact when it decides the rows' comparisons
            a, b = _num(span.group("a")), _num(span.group("b"))
            if 0 < a < b:
                least = Bound("ge", _quotient(b, a))
                if all(least.decides(o, t) is not None for o, t in comparisons(name)):
                    out.append(
                        Mention(
                            "bound",
                            span.start("a"),
                            span.end("b"),
                            field=name,
                            number=least.value,
                            message="ge",
                        )
                    )
                    # its values in units ("141 umol/L") were read on their own above: no longer a question
                    lo, hi = span.start("a"), span.end("b")
                    out[:] = [
                        o
                        for o in out
                        if not (o.kind == "problem" and o.field == name and lo <= o.start <= hi)
                    ]
                    continue
        if span:
            values = f"{span.group('a')} to {span.group('b')}"
            out.append(
                Mention(
                    "problem",
                    span.start("a"),
                    span.end("b"),
                    field=name,
                    message=f"{_LAB_NAME[name]} is given as values ({values}), not as a multiple; the source's "
                    f"criterion is a multiple of {_LAB_UNIT[name]}. Give it as a multiple of {_LAB_UNIT[name]}.",
                )
            )
            continue
        bare = _BARE_RE.match(low, end, ce)
        if bare and not covered[bare.start("num")]:
            num = _num(bare.group("num"))
            out.append(
                Mention(
                    "problem",
                    bare.start("num"),
                    bare.end("num"),
                    field=name,
                    message=f"{_LAB_NAME[name]} is given as {format_number(num)} without a multiple; the "
                    f"source's criterion is a multiple of {_LAB_UNIT[name]}. Give it as a multiple of "
                    f"{_LAB_UNIT[name]}.",
                )
            )
    return sorted(out, key=lambda m: m.start)


def _quotient(a: float, b: float) -> float:
    """a / b for a multiple computed from two written values, rounded to 9 decimals so that binary floating
    point never moves it across a bound: 1.2 / 0.8 is 1.5 (≥ 1.5 holds), not 1.4999999999999998."""
    return round(a / b, 9)


_BOUND_OP = {
    ">": "gt",
    "more than": "gt",
    "greater than": "gt",
    "higher than": "gt",
    "over": "gt",
    "above": "gt",
    ">=": "ge",
    "≥": "ge",
    "at least": "ge",
    "<": "lt",
    "less than": "lt",
    "under": "lt",
    "below": "lt",
    "<=": "le",
    "≤": "le",
}


def _satisfies(value: float, cmp: str, bound: float) -> bool:
    """Whether a measured value meets a written bound ("> 10", "at least 1.5", "below 3")."""
    op = _BOUND_OP.get(cmp)
    return op is not None and compare(op, value, bound)


def _problem(m: Mention, name: str, message: str) -> Mention:
    return Mention("problem", m.start, m.end, field=name, message=message)


# ---- attaching mentions to reactions -------------------------------------------------------------------
class _Acc:
    """Values collected for one reading of one turn."""

    def __init__(self) -> None:
        self.values: dict[str, list[float | bool | Bound]] = {}
        self.problems: list[Problem] = []
        # Severity words ("severe" 3): the grade only when no grade is written ("G3 (severe)", "severe
        # retinal vein occlusion, grade 4"): a written CTCAE grade is the measure the tables use.
        self.severities: list[float] = []

    def add(self, name: str, value: float | bool | Bound) -> None:
        self.values.setdefault(name, []).append(value)

    def build(self, reaction: str | None, label: str) -> tuple[Facts, tuple[Problem, ...]]:
        if self.severities and "grade" not in self.values:
            self.values["grade"] = list(self.severities)
        values: dict[str, object] = {}
        problems = list(self.problems)
        bad = {p.field for p in problems}
        for name, vals in self.values.items():
            if name in bad:
                continue
            distinct = list(dict.fromkeys(vals))
            if len(distinct) > 1:
                shown = " and ".join(_show_value(name, v) for v in distinct)
                problems.append(
                    Problem(name, f"Two different values are given for {label}: {shown}; give one.")
                )
                continue
            v = distinct[0]
            values[name] = int(v) if name == "grade" and isinstance(v, float) and v.is_integer() else v
        grade = values.get("grade")
        if isinstance(grade, float):  # 2.5
            problems.append(
                Problem(
                    "grade", f"Grade {format_number(grade)} is not a whole number; give a grade from 1 to 4."
                )
            )
            del values["grade"]
        facts = Facts(reaction=reaction, **values)  # type: ignore[arg-type]
        return facts, tuple(problems)


def _show_value(name: str, v: float | bool | Bound) -> str:
    if isinstance(v, Bound):
        return f"{v}×"
    if name == "grade":
        return f"grade {format_number(float(v))}"
    if isinstance(v, bool):
        return {
            "symptomatic": ("symptomatic", "asymptomatic"),
            "aki": ("AKI", "no AKI"),
            "suspected_scar": ("suspected SCARs", "no suspected SCARs"),
        }.get(name, ("yes", "no"))[0 if v else 1]
    return f"{format_number(v)}×"


def _read_turn(question: str, rules: RuleSet) -> _Turn:
    lex = lexicon_of(rules)
    scan = _scan(question, lex)
    bounds = scan.bounds
    # At most MAX_REACTION_MENTIONS are weighed against each fact (a hard cap on the pairwise work).
    reacts = [m for m in scan.mentions if m.kind == "reaction" or (m.kind == "flag" and m.flag)]
    reacts = reacts[:MAX_REACTION_MENTIONS]
    order: list[str] = []
    for m in reacts:
        if m.reaction and m.reaction not in order:
            order.append(m.reaction)
    accs: dict[str | None, _Acc] = {r: _Acc() for r in order}
    accs[None] = _Acc()

    react_starts = [r.start for r in reacts]  # reacts are disjoint and sorted: ends are sorted too
    react_ends = [r.end for r in reacts]

    def nearest(m: Mention, same_clause_within: int | None = None) -> str | None:
        # Moving away from m, distance and separators only grow: the nearest mention on each side is the
        # only candidate there (found by binary search, so attaching is not quadratic in the mentions).
        lo = max(0, bisect.bisect_right(react_ends, m.start) - 1)
        hi = bisect.bisect_left(react_starts, m.end) + 1
        best: tuple[float, int, str] | None = None
        for r in reacts[lo:hi]:
            if r.end <= m.start:
                dist, side = m.start - r.end, 0
            elif r.start >= m.end:
                dist, side = r.start - m.end, 1
            else:
                dist, side = 0, 0
            seps = _separators_between(bounds, min(r.end, m.end), max(r.start, m.start))
            if same_clause_within is not None and (seps or dist > same_clause_within):
                continue
            key = (seps * 1000.0 + dist, side, r.reaction or "")
            if best is None or key < best:
                best = key
        return best[2] if best is not None else None

    def owners(name: str) -> list[str | None]:
        users = [r for r in order if r in lex.reactions_using(name)]
        return list(users) if users else [None]

    def coordinated(m: Mention, target: str | None) -> list[str]:
        """The other reactions of a list the grade mention ``m`` follows or precedes directly."""
        k = bisect.bisect_left(react_starts, m.start)  # reacts before m: [:k], after: [k:]
        chain: list[Mention] = []
        if k > 0 and _COORD_TAIL_RE.fullmatch(scan.low, reacts[k - 1].end, m.start):
            chain = [reacts[k - 1]]
            while len(chain) < MAX_REACTION_MENTIONS and k - len(chain) > 0:
                prev = reacts[k - len(chain) - 1]
                if not _COORD_GAP_RE.fullmatch(scan.low, prev.end, chain[-1].start):
                    break
                chain.append(prev)
        elif k < len(reacts) and not scan.low[m.end : reacts[k].start].strip():
            chain = [reacts[k]]
            while len(chain) < MAX_REACTION_MENTIONS and k + len(chain) < len(reacts):
                nxt = reacts[k + len(chain)]
                if not _COORD_GAP_RE.fullmatch(scan.low, chain[-1].end, nxt.start):
                    break
                chain.append(nxt)
        names = {r.reaction for r in chain if r.reaction}
        if len(names) < 2:
            return []
        # only when the text says the grade is shared ("both", "each", "toxicities"): "grade 3 rash and
        # blurred vision" may grade the rash alone, so the eyes' grade is asked rather than assumed
        lo = min(m.start, *(r.start for r in chain))
        hi = max(m.end, *(r.end for r in chain))
        if not _SHARED_RE.search(scan.low, max(0, lo - 8), min(len(scan.low), hi + 12)):
            return []
        return [r for r in order if r in names and r != target]

    strong = weak = False
    for m in scan.mentions:
        if m.kind == "grade":
            strong = True
            target = nearest(m)
            assert m.number is not None
            for t in (target, *coordinated(m, target)):
                accs[t].add("grade", m.number)
                if m.number2 is not None:
                    accs[t].add("grade", m.number2)
        elif m.kind == "severity":
            target = nearest(m, same_clause_within=40)
            if target is not None:
                weak = True
                assert m.number is not None
                accs[target].severities.append(m.number)
        elif m.kind == "symptom":
            weak = True
            assert m.flag is not None
            accs[nearest(m)].add("symptomatic", m.flag)
        elif m.kind == "flag":
            if m.flag and m.field != "symptomatic":
                strong = True
            else:
                weak = True
            assert m.flag is not None
            if m.reaction in accs:
                accs[m.reaction].add(m.field, m.flag)
            else:  # "no SJS" with its reaction not named here: a fact for the reaction discussed before
                accs[None].add(m.field, m.flag)
        elif m.kind == "aki":
            assert m.flag is not None
            strong = strong or m.flag
            weak = weak or not m.flag
            for target in owners("aki"):
                accs[target].add("aki", m.flag)
        elif m.kind == "bound":
            strong = True
            assert m.number is not None
            for target in owners(m.field):
                accs[target].add(m.field, Bound(m.message, m.number))
        elif m.kind in ("ratio", "state"):
            if m.kind == "ratio":
                strong = True
            else:
                weak = True
            assert m.number is not None
            for target in owners(m.field):
                accs[target].add(m.field, m.number)
        elif m.kind == "problem":
            strong = True
            for target in owners(m.field):
                accs[target].problems.append(Problem(m.field, m.message))

    by_reaction = []
    for r in order:
        rx = rules.reaction(r)
        label = rx.label.text if rx is not None else r
        facts, probs = accs[r].build(r, label)
        by_reaction.append((r, facts, probs))
    loose, loose_problems = accs[None].build(None, "this question")
    return _Turn(
        tuple(by_reaction),
        loose,
        loose_problems,
        strong=strong,
        weak=weak,
        intent=scan.intent,
        soft_veto=scan.soft_veto,
        hard_veto=scan.hard_veto,
        generic=scan.generic,
        patient=scan.patient,
        retracted=scan.retracted,
    )


# ---- follow-ups ----------------------------------------------------------------------------------------
_GENERIC_FIELDS = frozenset({"grade"})


@dataclass
class _State:
    facts: dict[str, Facts] = field(default_factory=dict)
    last: tuple[str, ...] = ()
    pending: Facts = field(default_factory=Facts)
    context: bool = False


def _split_loose(loose: Facts, reaction: str, lex: Lexicon) -> tuple[Facts, Facts]:
    """(the part of reaction-less facts that belongs to ``reaction``, the rest)."""
    mine: dict[str, object] = {}
    rest: dict[str, object] = {}
    for name in loose.known():
        value = getattr(loose, name)
        if (
            name in _GENERIC_FIELDS
            or reaction in lex.reactions_using(name)
            or not any(lex.reactions_using(name))
        ):
            mine[name] = value
        else:
            rest[name] = value
    return Facts(**mine), Facts(**rest)  # type: ignore[arg-type]


def parse(
    question: str,
    history: Iterable[str] = (),
    rules: RuleSet | None = None,
    memo: dict[str, _Turn] | None = None,
) -> ParseResult:
    """The dosing facts of ``question``, filling missing facts from earlier turns (``history``, oldest first).

    ``rules`` supplies the vocabulary (default: the rule file of the default settings). ``memo``: the turns
    already read for one request (text → reading, over the same ``rules``), so that parsing the same question
    again (the table route, then the rule route) does not scan it twice; it holds at most the request's own
    turns (issue 9).
    """
    rules = rules if rules is not None else default_rules()
    lex = lexicon_of(rules)
    state = _State()
    turns = [t for t in history if isinstance(t, str) and t.strip()]
    result = ParseResult((), False)
    for k, text in enumerate([*turns, question]):
        current = k == len(turns)
        text = text if isinstance(text, str) else ""
        turn = memo.get(text) if memo is not None else None
        if turn is None:
            turn = _read_turn(text, rules)
            if memo is not None:
                memo[text] = turn
        dosing = turn.dosing(state.context)
        readings: list[Reading] = []
        if turn.reactions:
            pending = state.pending
            # a correction of the reaction ("it's the skin, not the eyes"): the facts stated for the
            # reaction taken back belong to the one named instead
            for r0 in turn.retracted:
                if r0 in state.last and r0 not in turn.reactions and r0 in state.facts:
                    old = state.facts.pop(r0)
                    pending = pending.merged(replace(old, reaction=None))
                    state.last = tuple(r for r in state.last if r != r0)
            for r, facts, probs in turn.by_reaction:
                before = state.facts.get(r, Facts(reaction=r))
                if pending.known():
                    before = before.merged(pending)
                merged = before.merged(facts)
                state.facts[r] = merged
                inherited = tuple(f for f in merged.known() if f != "reaction" and f not in facts.known())
                readings.append(Reading(merged, inherited, probs))
            state.pending = Facts()
            if _ALSO_RE.search(text) and state.last:
                # "she now also has grade 1 ocular toxicity — the plan for both?": the earlier reactions stay
                kept = tuple(r for r in state.last if r not in turn.reactions and r in state.facts)
                readings = [Reading(state.facts[r], state.facts[r].known()) for r in kept] + readings
                state.last = kept + turn.reactions
            else:
                state.last = turn.reactions
            if turn.has_loose:
                readings.append(Reading(turn.loose, (), turn.loose_problems))
        elif turn.has_loose:
            if turn.generic and state.last:
                # "Patient has a grade 3 toxicity": a new question about an unnamed reaction — ask which,
                # offering the earlier reaction(s) first; nothing is carried over.
                readings.append(Reading(turn.loose, (), turn.loose_problems, suggested=state.last))
                state.pending = turn.loose  # the answer ("the eye one") names the reaction these belong to
            elif len(state.last) == 1:
                r = state.last[0]
                mine, rest = _split_loose(turn.loose, r, lex)
                merged = state.facts.get(r, Facts(reaction=r)).merged(mine)
                state.facts[r] = merged
                inherited = tuple(f for f in merged.known() if f not in mine.known())
                mine_problems = tuple(
                    p for p in turn.loose_problems if p.field in mine.known() or p.field not in rest.known()
                )
                readings.append(Reading(merged, inherited, mine_problems))
                if rest.known():
                    readings.append(
                        Reading(rest, (), tuple(p for p in turn.loose_problems if p.field in rest.known()))
                    )
            else:
                merged = state.pending.merged(turn.loose)
                state.pending = merged
                inherited = tuple(f for f in merged.known() if f not in turn.loose.known())
                readings.append(Reading(merged, inherited, turn.loose_problems))
        elif turn.intent and state.context and state.last:  # "what should I do?" after a dosing turn
            readings = [Reading(state.facts[r], state.facts[r].known()) for r in state.last]
        elif dosing and turn.patient:  # "should we hold it for this patient?": ask which reaction
            readings = [Reading(Facts())]
        state.context = dosing
        if current:
            result = ParseResult(tuple(readings), dosing and bool(readings))
    return result


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    from bot.dose.rules import default_rules_path, load_rules
    from bot.settings import Settings

    s = Settings.from_env()
    return load_rules(default_rules_path(s.corpus_path), s.root)
