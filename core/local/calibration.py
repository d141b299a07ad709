"""The calibration pairs for static int8 quantisation, shipped with the layer (deterministic).

Static int8 needs each activation's range before the first call. These 100 (query, passage) pairs
(20 passages of general English prose written for this purpose, each paired with five queries:
two that it answers, three that it does not) are run through the float model once, at export;
the quantised file is cached, so a model is calibrated once per checkpoint and the result never
depends on what a user sends first.
"""

from __future__ import annotations

PASSAGES: tuple[str, ...] = (
    "The left ventricle pumps oxygen-rich blood into the aorta and on to the rest of the body. When it "
    "has to work against high pressure for years, as in untreated hypertension or a narrowed aortic "
    "valve, its muscular wall thickens. Doctors call this left ventricular hypertrophy. A thicker wall "
    "is stiffer, fills less easily between beats and needs more oxygen, which raises the risk of heart "
    "failure, arrhythmia and stroke. An echocardiogram or an ECG usually finds it, and treating the "
    "cause, most often blood pressure, can make the wall thinner again.",
    "Sourdough bread rises because of a culture of wild yeast and lactic acid bacteria kept alive in a "
    "mixture of flour and water. The bacteria produce acids that give the loaf its tang and help it "
    "keep longer, while the yeast makes the carbon dioxide that lifts the dough. A starter is fed every "
    "day or two; bakers discard part of it before each feeding so that it does not grow without limit. "
    "A long, cool fermentation develops more flavour than a quick, warm one.",
    "The Treaty of Westphalia, signed in 1648, ended the Thirty Years' War in the Holy Roman Empire and "
    "the Eighty Years' War between Spain and the Dutch Republic. Historians often date the modern idea "
    "of state sovereignty to these agreements: rulers recognised each other's authority over their own "
    "territory and religion. The settlement also confirmed the independence of Switzerland and of the "
    "Dutch Republic, and it redrew borders across central Europe.",
    "To replace a bicycle inner tube, first release the brake if it blocks the tyre, then open the "
    "quick-release lever or undo the axle nuts and take the wheel out. Let any remaining air out, push "
    "a tyre lever under the bead and hook it to a spoke, then run a second lever around the rim. Pull "
    "out the old tube, check the inside of the tyre for thorns or glass, fit the new tube slightly "
    "inflated, and press the bead back by hand.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. In the light-dependent "
    "reactions, chlorophyll in the thylakoid membranes absorbs photons and splits water, releasing "
    "oxygen and storing energy in ATP and NADPH. The Calvin cycle, which runs in the stroma, then uses "
    "that energy to fix carbon dioxide into three-carbon sugars. Plants in hot, dry climates use C4 or "
    "CAM pathways that waste less water.",
    "A Roth IRA is a retirement account funded with money that has already been taxed. Contributions "
    "can be withdrawn at any time, and earnings come out tax-free after age fifty-nine and a half if "
    "the account has been open for five years. There are income limits on who may contribute directly. "
    "A traditional IRA works the other way round: contributions may be deductible now, and withdrawals "
    "are taxed as income later.",
    "The monarch butterfly migrates up to four thousand kilometres each autumn, from Canada and the "
    "northern United States to a few mountain forests in central Mexico. No single butterfly makes the "
    "round trip; the journey north in spring takes several generations. Monarchs navigate with a "
    "time-compensated sun compass in their antennae and brain. Loss of milkweed, the only plant their "
    "caterpillars eat, has reduced their numbers.",
    "Python's list type is a dynamic array of references. Appending is fast on average because the "
    "array grows by a fraction of its size when it is full, so most appends need no copy. Inserting or "
    "deleting at the front is slow, since every later element has to move; a collections.deque is the "
    "better choice for queues. Sorting uses Timsort, which is stable and fast on data that is already "
    "partly ordered.",
    "Mount Kilimanjaro in Tanzania is the highest mountain in Africa, rising to 5,895 metres. It is a "
    "dormant volcano with three cones: Kibo, Mawenzi and Shira. Climbers pass through rainforest, "
    "heath, alpine desert and finally an arctic summit zone. Most routes take five to nine days, and "
    "the extra days mainly help the body adjust to altitude. The glaciers near the summit have shrunk "
    "by more than eighty percent in the last century.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease. Some contain "
    "a weakened or inactivated virus, others only a protein from its surface, and mRNA vaccines give "
    "cells the instructions to make that protein for a short time. In each case, B cells learn to make "
    "antibodies and memory cells remain, so that a later infection is met quickly. Booster doses "
    "refresh immunity that fades over time.",
    "Inflation measures how fast the general level of prices rises. Central banks usually aim for about "
    "two percent a year. When inflation runs above the target, they raise interest rates, which makes "
    "borrowing dearer, slows spending and eventually eases price growth. Deflation, a sustained fall in "
    "prices, can be just as harmful, because people delay purchases and the real burden of debt grows.",
    "The violin has four strings tuned in fifths: G, D, A and E. The player sets them vibrating with a "
    "bow strung with horsehair and rosin, or by plucking them, which is called pizzicato. The bridge "
    "carries the vibration to the top plate, and the sound post inside the body links the top to the "
    "back. Small changes in the thickness of the plates change the tone, which is why old Italian "
    "instruments are so closely studied.",
    "Concrete is a mixture of cement, water, sand and gravel. Cement reacts with water in a process "
    "called hydration, forming crystals that bind the aggregate into a hard mass. Concrete is strong in "
    "compression but weak in tension, so beams and slabs are reinforced with steel bars. It keeps "
    "gaining strength for weeks after it is poured, and it must be kept moist while it cures or the "
    "surface will crack.",
    "Sleep runs in cycles of about ninety minutes. Each cycle moves from light sleep into deep, "
    "slow-wave sleep and then into rapid eye movement sleep, when most vivid dreams occur. Deep sleep "
    "dominates the early part of the night and REM sleep the later part. Adults need seven to nine "
    "hours; too little sleep impairs attention, memory and mood, and over years it is linked to heart "
    "disease and diabetes.",
    "The Great Barrier Reef stretches for more than two thousand kilometres along the coast of "
    "Queensland, Australia. It is built by billions of tiny coral polyps that live in partnership with "
    "algae. When the water gets too warm, the corals expel the algae and turn white, an event known as "
    "bleaching; if the heat lasts, they die. Several mass bleaching events since 1998 have damaged "
    "large parts of the reef.",
    "A mortgage is a loan secured on a property. With a repayment mortgage, each monthly payment covers "
    "the interest and part of the capital, so the debt is gone at the end of the term. A fixed rate "
    "keeps payments the same for a set period, while a variable rate follows the lender's base rate. "
    "Paying even a little extra each month can shorten the term and save a large amount of interest.",
    "Chess opens with each side developing knights and bishops toward the centre, castling the king to "
    "safety and connecting the rooks. Control of the central squares gives pieces more room and makes "
    "attacks easier. In the middlegame, players look for tactics such as forks, pins and skewers. In "
    "the endgame the king becomes an active piece, and passed pawns that can be promoted often decide "
    "the result.",
    "Glaciers form where more snow falls in winter than melts in summer. Over years the snow is pressed "
    "into dense ice, which slowly flows downhill under its own weight. As a glacier moves it plucks "
    "rocks from its bed and grinds the valley floor, carving U-shaped valleys, cirques and fjords. When "
    "it melts back it leaves moraines, ridges of the rock and gravel it carried.",
    "Git records a project's history as a series of snapshots called commits. Each commit points to its "
    "parent, so branches are simply movable names for commits. Merging joins two lines of work and "
    "creates a commit with two parents, while rebasing replays commits on top of another branch to keep "
    "a straight history. A conflict arises when both sides changed the same lines, and the person "
    "merging must choose the result.",
    "Olive oil is pressed from whole olives. Extra virgin oil comes from the first cold pressing and "
    "must meet limits on acidity and taste; it keeps more polyphenols, which give it a peppery finish. "
    "Refined oils are treated with heat or chemicals to remove flaws and have a milder flavour and a "
    "higher smoke point. Oil should be stored away from light and heat, and it is best used within a "
    "year of pressing.",
)

#: Five queries per passage, in passage order: the first two are answered by it, the rest not.
QUERIES: tuple[tuple[str, ...], ...] = (
    (
        "causes of left ventricular hypertrophy",
        "what is a thickened heart wall",
        "how to bake bread",
        "treaty that ended the thirty years war",
        "best time to see monarch butterflies",
    ),
    (
        "how does sourdough starter work",
        "why do you discard sourdough starter",
        "symptoms of heart failure",
        "what is a roth ira",
        "how long does concrete take to cure",
    ),
    (
        "what did the peace of westphalia establish",
        "when did the thirty years war end",
        "how to fix a flat bike tyre",
        "what causes inflation",
        "how many strings does a violin have",
    ),
    (
        "how to change a bicycle inner tube",
        "tools needed to remove a tyre",
        "what is photosynthesis",
        "highest mountain in africa",
        "how do vaccines work",
    ),
    (
        "what are the products of photosynthesis",
        "where does the calvin cycle take place",
        "python list append complexity",
        "how coral bleaching happens",
        "fixed vs variable rate mortgage",
    ),
    (
        "roth ira withdrawal rules",
        "difference between roth and traditional ira",
        "how glaciers form",
        "chess opening principles",
        "what is extra virgin olive oil",
    ),
    (
        "how far do monarch butterflies migrate",
        "what do monarch caterpillars eat",
        "git rebase vs merge",
        "stages of sleep",
        "how is concrete reinforced",
    ),
    (
        "is python list insert at front slow",
        "what sorting algorithm does python use",
        "kilimanjaro climbing days",
        "how central banks control inflation",
        "violin sound post purpose",
    ),
    (
        "how tall is kilimanjaro",
        "how long does it take to climb kilimanjaro",
        "sourdough fermentation time",
        "how mrna vaccines work",
        "great barrier reef length",
    ),
    (
        "how do mrna vaccines work",
        "why are booster doses needed",
        "what is left ventricular hypertrophy",
        "photosynthesis light reactions",
        "how to castle in chess",
    ),
    (
        "what happens when interest rates rise",
        "why is deflation bad",
        "how bicycles brakes work",
        "monarch butterfly navigation",
        "git merge conflict",
    ),
    (
        "how is a violin tuned",
        "what is pizzicato",
        "treaty of westphalia sovereignty",
        "olive oil smoke point",
        "how many hours of sleep do adults need",
    ),
    (
        "why is concrete reinforced with steel",
        "how does cement harden",
        "roth ira income limits",
        "calvin cycle",
        "what is a fjord",
    ),
    (
        "how long is a sleep cycle",
        "when does rem sleep happen",
        "what is a repayment mortgage",
        "coral polyps and algae",
        "python deque vs list",
    ),
    (
        "what causes coral bleaching",
        "how big is the great barrier reef",
        "what is hypertension",
        "how to store olive oil",
        "chess endgame king",
    ),
    (
        "how does a repayment mortgage work",
        "overpaying a mortgage",
        "how does glacier ice move",
        "how to feed a sourdough starter",
        "what is a u-shaped valley",
    ),
    (
        "basic chess strategy for beginners",
        "what is a fork in chess",
        "kilimanjaro glaciers melting",
        "inflation target of central banks",
        "how to replace a bike tube",
    ),
    (
        "how are u-shaped valleys formed",
        "what is a moraine",
        "what is git commit",
        "vaccine memory cells",
        "polyphenols in olive oil",
    ),
    (
        "what is the difference between git merge and rebase",
        "what is a git branch",
        "left ventricle function",
        "dutch republic independence",
        "monarch migration generations",
    ),
    (
        "what does extra virgin olive oil mean",
        "how long does olive oil keep",
        "cement hydration",
        "deep sleep and memory",
        "violin bow horsehair rosin",
    ),
)


def calibration_pairs() -> list[tuple[str, str]]:
    """The 100 (query, passage) pairs, in a fixed order."""
    return [(query, passage) for passage, queries in zip(PASSAGES, QUERIES, strict=True) for query in queries]
