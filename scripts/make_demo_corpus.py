#!/usr/bin/env python3
"""Generate a synthetic peer-support forum corpus for demos, tests and benchmarks.

    scripts/make_demo_corpus.py --posts 3000 --seed 2024 --out corpora/demo --format csv

Writes three files into ``--out``:

* ``posts.<csv|jsonl|parquet>`` — ``post_id, forum, user_id, thread_id, text, created_at``,
  threads of a starter post and replies in seven forums named after birds, in
  chronological order. About a fifth of the posts say "thank you for …" (plus decoys
  such as "thanks for" and "thankyou for"); about 30% contain fictitious personal
  identifiers; a handful (~0.2%) have an empty ``user_id`` (deleted accounts; null in
  JSONL and Parquet).
* ``consent.csv`` — ``user_id, status, recorded_at, forum, expires_at, notice_version,
  source``: a realistic, messy mixture of consent histories (opt-in, opt-out,
  withdrawal, forum-specific choices, expiries, records after the 2025-01-01 as-of
  date, same-time conflicts), rows shuffled.
* ``identifiers.jsonl`` — for every post that contains identifiers,
  ``{"post_id", "spans": [{"start", "end", "entity_type", "text"}]}`` with code point
  offsets (end exclusive) recorded while the text was assembled.

Everything is fictitious: phone numbers are from Ofcom's drama ranges, e-mail and web
addresses use the reserved example.com/.org/.net domains, NHS numbers are in the
999 test range (with a valid modulus-11 check digit), and names, ages and addresses
are drawn at random. Same arguments → byte-identical files (one ``random.Random``
per purpose, seeded from ``--seed``; no clock, no hash-order dependence). Posts are
streamed to disk in chunks, so ``--posts 1000000`` runs in bounded memory.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import heapq
import itertools
import json
import math
import os
import re
import sys
import time
from array import array
from datetime import datetime, timedelta, timezone
from pathlib import Path
from random import Random
from typing import Any, Callable, Iterator, Sequence

# --------------------------------------------------------------------------- constants

FORUMS = ("Robin", "Magpie", "Dunnock", "Sparrow", "Starling", "Chaffinch", "Jay")
FORUM_SHARES = (0.19, 0.16, 0.15, 0.14, 0.13, 0.12, 0.11)  # Jay smallest, still > 10%
POST_COLUMNS = ("post_id", "forum", "user_id", "thread_id", "text", "created_at")
CONSENT_COLUMNS = ("user_id", "status", "recorded_at", "forum", "expires_at", "notice_version", "source")
ENTITY_TYPES = (
    "PERSON", "USERNAME", "EMAIL", "PHONE", "POSTCODE", "NHS_NUMBER", "NI_NUMBER",
    "ADDRESS", "LOCATION", "ORG", "DATE", "AGE", "URL",
)
FORMATS = ("csv", "jsonl", "parquet")
THANK_YOU_FOR = re.compile(r"\bthank\s+you\s+for\b", re.IGNORECASE)

UTC = timezone.utc
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)  # the demo study judges consent at this instant
POSTS_START = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp())
POSTS_END = int(datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC).timestamp())
CONSENT_START = POSTS_START
CONSENT_END = int(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
LATE_START = int(datetime(2025, 1, 2, tzinfo=UTC).timestamp())
LATE_END = int(datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC).timestamp())
AS_OF_TS = int(AS_OF.timestamp())
DAY = 86_400
YEAR = 365 * DAY

CHUNK_POSTS = 50_000
INVALID_SHARE = 0.002

# Consent histories per user (shares of the user population; see make_consent).
CONSENT_MIX = (
    ("opt_in_all", 0.45),
    ("opt_out", 0.10),
    ("withdrawn", 0.08),
    ("forum_specific", 0.08),
    ("no_record", 0.15),
    ("expiry", 0.05),
    ("not_yet", 0.03),
    ("conflict", 0.01),
    ("reopt_in", 0.01),
    ("late_change", 0.04),
)

# Ofcom numbers reserved for drama (mobiles: 07700 900000–900999). Landlines: printed
# prefix and digits after it. Northern Ireland is left out: published lists disagree.
LANDLINE_RANGES = {
    "0113": ("0113 496 0", 3), "0114": ("0114 496 0", 3), "0115": ("0115 496 0", 3),
    "0116": ("0116 496 0", 3), "0117": ("0117 496 0", 3), "0118": ("0118 496 0", 3),
    "0121": ("0121 496 0", 3), "0131": ("0131 496 0", 3), "0141": ("0141 496 0", 3),
    "0151": ("0151 496 0", 3), "0161": ("0161 496 0", 3), "0191": ("0191 498 0", 3),
    "020": ("020 7946 0", 3), "029": ("029 2018 0", 3), "01632": ("01632 960", 3),
}

# --------------------------------------------------------------------------- vocabulary

FIRST_NAMES = (
    "Sarah", "Emma", "Sophie", "Chloe", "Lucy", "Hannah", "Jess", "Amy", "Laura", "Rachel",
    "Katie", "Megan", "Olivia", "Amelia", "Ellie", "Holly", "Becky", "Charlotte", "Gemma", "Zoe",
    "Aisha", "Priya", "Fatima", "Niamh", "Siobhan", "Kirsty", "Leanne", "Jade", "Molly", "Freya",
    "Kate", "Helen", "Claire", "Nicola", "Joanne", "Lauren", "Georgia", "Maisie", "Ruby", "Imogen",
    "James", "Tom", "Dan", "Josh", "Ben", "Liam", "Ryan", "Callum", "Jamie", "Adam",
    "Chris", "Matt", "Sam", "Alex", "Luke", "Connor", "Kieran", "Harry", "Oliver", "George",
    "Mohammed", "Ali", "Hamza", "Kwame", "Tariq", "Rhys", "Owen", "Euan", "Craig", "Gareth",
    "Steve", "Paul", "Dave", "Gary", "Lee", "Jordan", "Nathan", "Aaron", "Ethan", "Joe",
)
WORD_NAMES = ("Hope", "Will", "Rose", "Mark", "Faith", "Grace", "Summer", "Jack", "Dawn", "Bill")
WORD_NAMES_M = ("Will", "Mark", "Jack", "Bill")
FEMALE_NAMES = FIRST_NAMES[:40] + ("Hope", "Rose", "Faith", "Grace", "Summer", "Dawn")
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
    "Clarke", "Hughes", "Edwards", "Turner", "Hill", "Khan", "Ahmed", "Murphy", "Kelly", "Campbell",
    "Lewis", "Harris", "Martin", "Cooper", "Ward", "Morris", "Moore", "Clark", "Lee", "King",
    "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker",
    "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kaur", "Begum", "Okafor", "Nowak", "MacDonald",
)
HANDLE_ADJ = (
    "quiet", "sleepy", "little", "tired", "hopeful", "grey", "gentle", "lost", "cosy", "wobbly",
    "rainy", "misty", "brave", "tiny", "soft", "wild", "northern", "stormy", "sunny", "paper",
    "velvet", "foggy", "wandering", "sleepless", "tangled", "mellow", "clumsy", "hidden", "blue", "odd",
)
HANDLE_NOUN = (
    "fox", "owl", "moth", "otter", "hedgehog", "bee", "cloud", "teacup", "fern", "pebble",
    "moon", "star", "badger", "kettle", "biscuit", "sock", "raincoat", "lighthouse", "toast", "panda",
    "acorn", "puffin", "wombat", "penguin", "daisy", "mushroom", "comet", "ghost", "tortoise", "bear",
)

# City → neighbourhoods with outward postcodes, landline range, hospitals.
PLACES = (
    ("Manchester", (("Didsbury", "M20"), ("Fallowfield", "M14"), ("Hulme", "M15"), ("Chorlton", "M21"),
                    ("Levenshulme", "M19"), ("Withington", "M20"), ("Ancoats", "M4")),
     ("M1", "M4", "M13", "M14", "M15", "M20", "M21"), "0161",
     ("Wythenshawe Hospital", "Manchester Royal Infirmary", "North Manchester General")),
    ("Salford", (("Eccles", "M30"), ("Swinton", "M27"), ("Pendleton", "M6"), ("Ordsall", "M5")),
     ("M5", "M6", "M7", "M30"), "0161", ("Salford Royal",)),
    ("Leeds", (("Headingley", "LS6"), ("Hyde Park", "LS6"), ("Armley", "LS12"), ("Chapel Allerton", "LS7"),
               ("Harehills", "LS9"), ("Beeston", "LS11"), ("Horsforth", "LS18")),
     ("LS1", "LS2", "LS6", "LS7", "LS9", "LS11", "LS12"), "0113",
     ("St James's Hospital", "Leeds General Infirmary")),
    ("London", (("Hackney", "E8"), ("Peckham", "SE15"), ("Brixton", "SW9"), ("Walthamstow", "E17"),
                ("Tottenham", "N17"), ("Lewisham", "SE13"), ("Stoke Newington", "N16"), ("Camden", "NW1")),
     ("E8", "SE15", "SW9", "E17", "N17", "SE13", "N16", "NW1", "SW1A"), "020",
     ("King's College Hospital", "Homerton Hospital", "St Thomas' Hospital", "University College Hospital")),
    ("Bristol", (("Easton", "BS5"), ("Bedminster", "BS3"), ("Clifton", "BS8"), ("Bishopston", "BS7"),
                 ("Southmead", "BS10"), ("Fishponds", "BS16")),
     ("BS1", "BS3", "BS5", "BS7", "BS8", "BS16"), "0117", ("Southmead Hospital", "Bristol Royal Infirmary")),
    ("Sheffield", (("Broomhill", "S10"), ("Crookes", "S10"), ("Sharrow", "S7"), ("Hillsborough", "S6")),
     ("S1", "S6", "S7", "S10", "S11"), "0114", ("Northern General Hospital", "Royal Hallamshire Hospital")),
    ("Nottingham", (("Lenton", "NG7"), ("Sneinton", "NG2"), ("Radford", "NG7"), ("Carlton", "NG4")),
     ("NG1", "NG2", "NG4", "NG7"), "0115", ("Queen's Medical Centre", "Nottingham City Hospital")),
    ("Leicester", (("Clarendon Park", "LE2"), ("Belgrave", "LE4"), ("Aylestone", "LE2")),
     ("LE1", "LE2", "LE4"), "0116", ("Leicester Royal Infirmary", "Glenfield Hospital")),
    ("Reading", (("Caversham", "RG4"), ("Earley", "RG6"), ("Tilehurst", "RG31")),
     ("RG1", "RG4", "RG6", "RG31"), "0118", ("Royal Berkshire Hospital",)),
    ("Birmingham", (("Selly Oak", "B29"), ("Moseley", "B13"), ("Kings Heath", "B14"), ("Erdington", "B23"),
                    ("Edgbaston", "B15")),
     ("B13", "B14", "B15", "B23", "B29"), "0121", ("Queen Elizabeth Hospital", "Heartlands Hospital")),
    ("Edinburgh", (("Leith", "EH6"), ("Morningside", "EH10"), ("Portobello", "EH15"), ("Gorgie", "EH11")),
     ("EH1", "EH6", "EH10", "EH11", "EH15"), "0131",
     ("Royal Infirmary of Edinburgh", "Western General Hospital")),
    ("Glasgow", (("Partick", "G11"), ("Govan", "G51"), ("Dennistoun", "G31"), ("Shawlands", "G41")),
     ("G1", "G11", "G31", "G41", "G51"), "0141",
     ("Queen Elizabeth University Hospital", "Glasgow Royal Infirmary")),
    ("Liverpool", (("Toxteth", "L8"), ("Anfield", "L4"), ("Wavertree", "L15"), ("Allerton", "L18")),
     ("L1", "L4", "L8", "L15", "L18"), "0151", ("Royal Liverpool Hospital", "Aintree Hospital")),
    ("Newcastle", (("Jesmond", "NE2"), ("Heaton", "NE6"), ("Byker", "NE6"), ("Gosforth", "NE3")),
     ("NE1", "NE2", "NE3", "NE6"), "0191", ("Royal Victoria Infirmary", "Freeman Hospital")),
    ("Sunderland", (("Roker", "SR6"), ("Millfield", "SR4"), ("Hendon", "SR2")),
     ("SR1", "SR2", "SR4", "SR6"), "0191", ("Sunderland Royal",)),
    ("Cardiff", (("Cathays", "CF24"), ("Roath", "CF24"), ("Canton", "CF5"), ("Splott", "CF24")),
     ("CF10", "CF24", "CF5"), "029", ("University Hospital of Wales", "Llandough Hospital")),
    ("Stockport", (("Heaton Moor", "SK4"), ("Edgeley", "SK3"), ("Marple", "SK6")),
     ("SK1", "SK3", "SK4", "SK6"), "01632", ("Stepping Hill",)),
    ("Wigan", (("Pemberton", "WN5"), ("Standish", "WN6")), ("WN1", "WN5", "WN6"), "01632",
     ("Wigan Infirmary",)),
    ("Halifax", (("King Cross", "HX1"), ("Illingworth", "HX2")), ("HX1", "HX2", "HX3"), "01632",
     ("Calderdale Royal",)),
    ("Doncaster", (("Bessacarr", "DN4"), ("Balby", "DN4")), ("DN1", "DN2", "DN4"), "01632",
     ("Doncaster Royal Infirmary",)),
    ("Preston", (("Fulwood", "PR2"), ("Ashton", "PR2")), ("PR1", "PR2"), "01632",
     ("Royal Preston Hospital",)),
    ("Norwich", (("Earlham", "NR4"), ("Thorpe", "NR7")), ("NR1", "NR2", "NR4", "NR7"), "01632",
     ("Norfolk and Norwich Hospital",)),
    ("Swansea", (("Uplands", "SA2"), ("Sketty", "SA2")), ("SA1", "SA2"), "01632", ("Morriston Hospital",)),
    ("Huddersfield", (("Lindley", "HD3"), ("Marsh", "HD1")), ("HD1", "HD3"), "01632",
     ("Huddersfield Royal Infirmary",)),
)
PLACE_WEIGHTS = (
    14, 6, 10, 16, 8, 5, 5, 3, 2, 7, 4, 5, 5, 4, 2, 4, 3, 2, 2, 2, 2, 2, 2, 2,
)
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
GP_STEMS = (
    "Parkside", "Riverside", "Hillview", "Oakwood", "Beech House", "Brookfield", "Ashgrove",
    "Meadowbank", "Northgate", "Church Lane", "Valley View", "Elm Tree", "Market Street", "Westgate",
)
GP_KINDS = ("Medical Practice", "Surgery", "Health Centre", "Medical Centre", "Family Practice")
SCHOOLS = (
    "St Mary's High School", "St John's Primary", "Oakwood Academy", "Parkside Academy",
    "Hillcrest Sixth Form College", "Holy Cross RC High", "Castle View Secondary",
    "Greenfield Community College", "St Anne's", "Moorside High", "Kingsway School", "Riverside College",
)
EMPLOYERS = (
    "Tesco", "Sainsbury's", "Greggs", "Asda", "Lidl", "Costa", "Pret", "Boots", "Amazon",
    "Royal Mail", "Primark", "B&Q", "JD Sports", "Argos", "Wetherspoons", "Next", "Aldi", "Specsavers",
)
UNIS = (
    "Leeds Uni", "Manchester Met", "UWE", "Sheffield Hallam", "Salford Uni", "Cardiff Uni",
    "Goldsmiths", "Nottingham Trent", "Liverpool John Moores", "Northumbria", "Edinburgh Napier",
)
STREETS = (
    "Oak Road", "Victoria Street", "Church Lane", "Station Road", "Park Avenue", "Mill Lane",
    "Wilmslow Road", "Beech Grove", "Queens Road", "Albert Terrace", "Chapel Street", "Meadow Way",
    "Cavendish Road", "Hawthorn Close", "Elm Drive", "Grove Street", "Princess Road", "Ash Crescent",
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
URL_SLUGS = (
    "my-first-year-on-sertraline", "what-helped-me-with-panic", "notes-from-the-waiting-list",
    "one-good-thing-a-day", "walking-for-my-head", "drawing-my-anxiety", "uni-and-me",
    "coming-off-meds-slowly", "100-days", "things-i-wish-i-knew",
)
EMOJI = ("💜", "😔", "🙏", "❤️", "😊", "🤞", "💪", "😭", "🙂", "🌻", "😴", "🫶", "💛", "🥺", "😅")
NI_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NI_SECOND = "ABCEGHJKLMNPRSTWXYZ"
NI_BAD_PREFIXES = frozenset(("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"))
NI_PREFIXES = tuple(a + b for a in NI_FIRST for b in NI_SECOND if a + b not in NI_BAD_PREFIXES)

# Generic (non-identifying) slot values: durations, doses, relations … many are decoys.
GENERIC_SLOTS: dict[str, tuple[str, ...]] = {
    "dur": ("three weeks", "a couple of months", "about six months", "nearly a year", "2 years",
            "18 months", "ages", "a fortnight", "4 days", "a few weeks", "over a year", "6 weeks",
            "5 months", "10 days", "about a month"),
    "wait": ("18 months", "over a year", "six months", "9 months", "two years", "12 weeks",
             "at least 40 weeks", "8 months", "a year and a half"),
    "med": ("sertraline", "sertraline", "sertraline", "citalopram", "fluoxetine", "mirtazapine",
            "venlafaxine", "propranolol", "escitalopram", "duloxetine"),
    "dose": ("50mg", "50mg", "100mg", "20mg", "25mg", "150mg", "10mg", "15mg", "75mg", "200mg"),
    "rel": ("my mum", "my dad", "my partner", "my boyfriend", "my girlfriend", "my husband", "my wife",
            "my flatmate", "my best mate", "my nan", "my manager", "my sister", "my brother",
            "my housemate", "my other half"),
    "when": ("last night", "this morning", "yesterday", "on Sunday", "at 3am", "this afternoon",
             "over the weekend", "earlier", "on Monday", "at silly o'clock", "after tea"),
    "feel": ("anxious", "low", "flat", "on edge", "numb", "exhausted", "overwhelmed", "wobbly",
             "rubbish", "teary", "wired", "empty", "fragile", "irritable"),
    "therapy": ("CBT", "counselling", "talking therapy", "EMDR", "group therapy", "DBT", "CAT",
                "guided self-help"),
    "service": ("the crisis team", "the mental health team", "Talking Therapies", "the wellbeing service",
                "CAMHS", "student support", "occupational health", "the community mental health team",
                "the perinatal team", "a social prescriber"),
    "n": ("2", "3", "4", "5", "6", "7", "8", "10", "12", "14", "21", "30"),
    "mood": ("3/10", "4/10", "5/10", "meh", "wobbly", "okay-ish", "better than yesterday", "2/10",
             "6/10", "grey"),
    "dayadj": ("rough", "long", "weird", "strange", "quiet", "heavy", "okay", "mixed", "draining"),
    "activity": ("a walk round the block", "a shower", "a cup of tea in the garden", "some colouring",
                 "a bath", "the washing up", "ten minutes of yoga", "a podcast", "a bit of baking",
                 "a phone call"),
    "emo": EMOJI,
}

# Usual doses (ascending) so "sertraline 50mg" and "up to 100mg" look like real prescriptions.
MED_DOSES = {
    "sertraline": (25, 50, 100, 150, 200), "citalopram": (10, 20, 30, 40), "fluoxetine": (20, 40, 60),
    "mirtazapine": (15, 30, 45), "venlafaxine": (37.5, 75, 150, 225), "propranolol": (10, 40, 80),
    "escitalopram": (5, 10, 15, 20), "duloxetine": (30, 60, 90),
}

# --------------------------------------------------------------------------- sentence templates
# {slot} markers: lowercase = generic value (no span), UPPERCASE = identifier (a span).
# Nothing outside THANKS_* may contain the phrase "thank you for".

OPENERS_STARTER = (
    "Hi all,", "Hi everyone.", "Hey.", "Not sure if this is the right place but here goes.",
    "Long time lurker, first time posting.", "Sorry this is long.", "Bit of a ramble, sorry.",
    "Evening all.", "Morning all.", "Hiya.", "Hello lovely people.", "Not really sure why I'm posting.",
    "Quick one.", "Hi guys.", "Me again.", "Right.", "Ok so.", "Hi, I'm new here.",
    "I don't usually post but I need to get this out.", "Sorry if this doesn't make sense.",
    "Can't sleep so I'm posting here.", "Hi lovely people, hope you're all hanging in there.",
)
OPENERS_REPLY = (
    "Hi.", "Hey.", "Oh hun.", "Hiya.", "Aw.", "Hey you.", "Hi there.", "Ah mate.", "Oh no.",
    "Hello.", "Big hugs.", "Hi lovely.", "Ugh.", "Honestly,", "Oof.",
)
CLOSERS_STARTER = (
    "Take care x", "Thanks for reading if you got this far.", "Sorry for the essay.", "x", "xx",
    "Anyway. That's me.", "Hope everyone's okay.", "Look after yourselves.", "Thanks for letting me vent.",
    "Sorry, rant over.", "Right, off to make a brew.", "Night all.", "Any advice welcome.",
    "Sorry this is all over the place.", "{emo}", "Be kind to yourselves.", "Anyone else? {emo}",
)
CLOSERS_REPLY = (
    "Take care x", "Sending love {emo}", "x", "xx", "Look after yourself.", "Here if you need to chat.",
    "Hope this helps.", "Speak soon.", "One day at a time.", "Much love x", "Hugs {emo}", "Keep us posted.",
    "Let us know how you get on.", "{emo}", "Be kind to yourself x",
)

KIND_POOLS: dict[str, tuple[str, ...]] = {
    "vent": (
        "I'm so tired of feeling like this.", "Everything feels like too much at the moment.",
        "I just need to get this out somewhere.", "I don't really have anyone I can say this to.",
        "I feel like I'm letting everyone down.",
        "Some days I'm fine and then out of nowhere it hits me again.",
        "I've been holding it together at work and then falling apart as soon as I get home.",
        "I'm sick of pretending I'm okay.", "Nobody in real life gets it.",
        "I keep cancelling plans and then hating myself for it.", "I feel like a burden to {rel}.",
        "Why is everything so hard at the moment?", "Honestly don't know what I'm doing anymore.",
        "Sorry for moaning, I know others have it worse.",
        "It's like there's a weight on my chest all the time.",
        "I've been {feel} for {dur} and I can't shake it.",
        "I snapped at {rel} over nothing and now I feel awful.",
        "I'm fed up of being the 'strong one' all the time.",
        "Every little thing sets me off at the moment.",
        "I cried in the car before going into the shop today.",
        "I just want one day where my brain leaves me alone.",
        "I feel like I'm watching my life from behind glass.",
        "People keep telling me to 'just get out more' like it's that simple.",
        "I'm exhausted from pretending everything's fine.",
        "Part of me wants to hide under the duvet for a month.",
        "I don't even know what I need, I just know this isn't it.",
        "I've had enough of being told it's 'just stress'.",
        "I thought I was doing better and now I'm back at square one.",
        "It's 2am and my head won't switch off.",
        "I feel guilty for feeling like this when nothing is actually wrong.",
    ),
    "question": (
        "Has anyone else had this?", "Does it get better?",
        "How did you know when it was time to go back to the GP?",
        "Is it normal to feel worse in the first few weeks on {med}?",
        "What do you all do when you can't sleep?", "How do you explain it to people at work?",
        "Is it worth going private for therapy or should I just wait?",
        "Has anyone tried {therapy}? What was it like?",
        "Any tips for getting through a panic attack on public transport?",
        "How long did it take for {med} to kick in for you?",
        "Should I tell my manager or keep it to myself?",
        "Did anyone else feel really tired when they went up to {dose}?",
        "How do you stop the spiral once it starts?",
        "What do I even say at the appointment?",
        "Is it worth ringing 111 or is that overreacting?",
        "Can you self-refer to Talking Therapies or does it have to be the GP?",
        "Does anyone have tips for getting through the weekends?",
        "Is it normal to feel nothing at all?",
        "How do I support {rel} without making it worse?",
        "Has anyone been through CAMHS with their kid? What should we expect?",
        "What helped you most in the early days?",
        "Am I overthinking this?",
        "How do you tell your family without them panicking?",
        "Is there anything that helps with the morning dread?",
    ),
    "checkin": (
        "Just checking in.", "Quick check in from me.", "Day {n} of trying to get out of bed before 10.",
        "Today's been a {dayadj} day.", "Managed to get outside for a walk today.",
        "Ate a proper meal for the first time in a while.", "Mood today: {mood}.",
        "Energy: low. Anxiety: medium. Hope: still there, just about.",
        "Sleep was rubbish again but I'm up and dressed.", "Managed {activity} today, small wins.",
        "Not a great day but not the worst either.", "Still here, still trying.",
        "Took my meds, drank some water, opened the curtains. That's the list done.",
        "Weekly check in: a bit better than last week.", "Anxiety's been bubbling away all day.",
        "Got through work without crying, which is a first this week.",
        "Checking in because I said I would.", "Bit wobbly today but okay.",
        "Had {activity} and it helped a little bit.", "Today's goal is just to get to tonight.",
    ),
    "goodnews": (
        "I actually have some good news for once!", "Finally got my assessment date through.",
        "Had my first therapy session and it went okay!", "I went back to work today and survived.",
        "Three months self-harm free today.", "Passed my driving test, still can't quite believe it.",
        "Went to the shop on my own without panicking.", "Got through a whole week without a panic attack.",
        "My GP actually listened this time.",
        "Got offered a place for {therapy}, the wait is {wait} but it's something.",
        "I handed my dissertation in!", "I went to a gig and stayed till the end.",
        "Small win: I made the phone call I'd been putting off for weeks.",
        "I've been on {med} for {dur} and I finally feel more like me.",
        "I got the job!", "I told {rel} how I've been feeling and they were brilliant about it.",
        "I've had three good days in a row and I'm scared to jinx it.",
        "I laughed properly today for the first time in ages.",
        "Just wanted to share something positive for a change.",
        "I didn't think I'd be posting something like this a year ago.",
    ),
    "badday": (
        "Today has been awful.", "Really bad day.", "Had a panic attack in the middle of the supermarket.",
        "Cried in the work toilets again.", "Couldn't get out of bed until 3pm.",
        "Everything went wrong from the minute I woke up.", "I had to leave a lecture halfway through.",
        "Had an argument with {rel} and now I can't stop shaking.",
        "The appointment got cancelled again.", "I feel like I've gone backwards.",
        "Rang the crisis line and couldn't get through.", "Just one of those days.",
        "Today I couldn't even face opening my emails.",
        "I missed my appointment because I couldn't leave the house.",
        "I'm so tired I could cry. Actually I have cried. A lot.",
        "Got some bad news at work and it's knocked me sideways.",
        "Everything feels heavy today.", "Had to call in sick again and the guilt is awful.",
        "The intrusive thoughts have been really loud today.",
        "I'm writing this from the bathroom floor because it's the only quiet place.",
    ),
    "intro": (
        "I'm new here.", "Been lurking for a while and finally made an account.",
        "A bit about me: I've had anxiety for as long as I can remember.",
        "I was diagnosed with depression {dur} ago.", "I'm not great at talking about this stuff.",
        "My GP suggested looking for an online support group so here I am.",
        "I found this forum through a search at 3am.",
        "I've read loads of posts on here and they've helped so much.",
        "I'm a student and I've been struggling since first year.",
        "I'm a mum of two and I've been struggling since my youngest was born.",
        "I work full time and I'm just about keeping my head above water.",
        "I'm hoping talking to people who get it might help.",
        "I've been on and off meds for years.", "I'm not really sure what I'm looking for.",
        "Hello to everyone who's been posting, you've made me feel less alone already.",
    ),
    "advice": (
        "Have you thought about speaking to your GP again?",
        "It might be worth asking for a double appointment so you don't feel rushed.",
        "Writing things down before the appointment really helps.",
        "Try the 5-4-3-2-1 grounding thing, it sounds daft but it works for me.",
        "Be kind to yourself, one step at a time.", "You could ask to be put on the cancellation list.",
        "Is there a self-referral option for Talking Therapies near you? A lot of areas have one.",
        "Maybe start really small, like just getting dressed.",
        "Don't be afraid to go back if the first med doesn't suit you.",
        "It's worth asking student support about mitigating circumstances.",
        "You're allowed to ask for reasonable adjustments at work.",
        "Keep a little mood diary, it helped me see patterns.",
        "Try not to google symptoms at night, it always makes it worse.",
        "Breathing in for 4 and out for 7 really does help me.",
        "Ask your GP about a referral to {service}.",
        "Please don't stop your meds suddenly, speak to your GP first.",
        "Could you write a letter to your GP if talking is hard? Mine read it and it made things easier.",
        "Try to get outside even for ten minutes, daylight helps more than you'd think.",
        "If work is the main trigger it's worth talking to occupational health.",
        "Don't compare your inside to everyone else's outside.",
        "Set one tiny goal for tomorrow and nothing else.",
        "You can ask for a different GP if you didn't feel listened to.",
        "Have a look at the self-help guides on the NHS website, the one on panic is good.",
        "Cold water on your face can help calm a panic attack down.",
        "Try a sleep routine: same time up every day, even at weekends. It's boring but it works.",
        "It's okay to take a day off to look after yourself.",
        "Maybe tell your tutor, they see this all the time.",
        "Give it the full six weeks on {med} if you can, the first few are the worst.",
        "Have you got a crisis plan? Worth writing one while you're feeling okay.",
        "Go easy on the caffeine, it made my anxiety so much worse.",
    ),
    "sympathy": (
        "Sending you a big hug.", "You're not alone in this.", "I'm really sorry you're going through this.",
        "That sounds really tough.", "Proud of you for posting.", "Be gentle with yourself today.",
        "You've done so well to get this far.", "It's okay to not be okay.",
        "I hope tomorrow is a bit kinder to you.", "Hope you're okay.", "Rooting for you.",
        "Take it one day at a time.", "You deserve support, you're not wasting anyone's time.",
        "You're doing better than you think.", "Sending strength your way.", "I'm glad you reached out.",
        "You're stronger than you feel right now.", "Hope today is a better one.",
        "Hold on, it won't always feel like this.", "It's not weak to ask for help, it's brave.",
        "I really hope the appointment goes well.", "You matter, even on the days it doesn't feel like it.",
        "Small steps are still steps.", "Be proud of yourself for getting through today.",
        "Nothing to apologise for, that's what we're here for.", "Oh I'm sorry, that sounds exhausting.",
        "I'm sorry today has been so hard.", "That must be so frustrating.",
        "I'm so sorry you've been left waiting like this.", "You're definitely not a burden.",
        "It makes total sense that you feel like this.", "What you're feeling is valid.",
    ),
    "congrats": (
        "This is such good news {emo}", "Well done you!", "That's a massive step, be proud.",
        "Reading this made my day.", "So pleased for you!", "Amazing, you should be really proud.",
        "This has put a smile on my face.", "Look how far you've come.", "Brilliant news, well done.",
        "You did it!", "Love seeing posts like this.", "That's huge, honestly.", "Celebrate this, seriously.",
        "This gives me hope.", "Well done for sticking with it.", "Proud of you, internet stranger!",
        "That's so lovely to read.", "Go you {emo}",
    ),
    "update": (
        "Just an update: I went to the GP in the end.", "Update: the appointment went okay.",
        "So I took your advice and rang them.", "I managed to speak to my manager today.",
        "Quick update for anyone who was wondering.", "I'm feeling a bit better today.",
        "I've booked the appointment for next week.",
        "I tried the breathing thing last night and it helped a bit.",
        "Still waiting to hear back but I feel less alone.",
        "Reading all your replies made me cry (good tears).",
        "I've read every reply at least twice.", "I showed {rel} this thread and we had a proper talk.",
        "I rang Talking Therapies and self-referred.", "Had a better night's sleep last night.",
        "I'm going to give {med} a bit longer like you said.", "Didn't expect so many replies.",
        "Today's been a bit easier.", "Managed {activity} this morning.",
    ),
    "experience": (
        "I was exactly the same.", "This could have been written by me.",
        "I've been there and it does get easier.",
        "When I started {med} I felt worse for {dur} before it got better.",
        "I waited {wait} for therapy, it was a nightmare.",
        "I had my first panic attack at uni and didn't know what was happening.",
        "I went through something really similar last year.",
        "For me it was {therapy} that made the difference.",
        "I'm on {meddose} and it took the edge off.",
        "My first GP appointment about it was terrifying but they were lovely.",
        "I used to think I was the only one who felt like this.",
        "I was signed off for {dur} and it gave me space to breathe.",
        "I've been on the waiting list for {wait} so I get how frustrating it is.",
        "Weekends are hard for me too.", "I get the 3am thoughts as well, they're horrible.",
        "When I told {rel} they were much more understanding than I expected.",
        "Same thing happened to me with {service}.",
        "I dropped out of uni the first time and went back later, it worked out.",
        "I had the same side effects on {med}, they wore off after a couple of weeks.",
        "I've had good months and bad months for years now, but the good ones are getting longer.",
        "I used to dread phone calls too.", "I still have wobbles but nothing like before.",
        "Mine started after a really stressful year at work.",
        "I'm a few steps ahead of you on this and honestly it does get better.",
        "I went private for a few sessions when the wait was too long, it helped tide me over.",
    ),
    "askback": (
        "How are you doing today?", "Have you got anyone you can talk to at home?",
        "Did the GP say how long the wait would be?", "How long have you been on it?", "Any update since?",
        "Are you safe right now?", "How did it go?", "Have you eaten today?",
        "Are you still on the list?", "What did they say?", "Did you manage to get some sleep?",
        "Have you told anyone else how you're feeling?",
    ),
    "mod": (
        "Hi, just popping in as a moderator.",
        "I've edited your post to remove some personal details, just to keep you safe.",
        "Please remember not to share contact details on the forum.",
        "If you're in crisis please contact Samaritans on 116 123 or ring 999 in an emergency.",
        "Moving this to the right board.", "Please keep replies supportive.", "Welcome to the forum!",
        "Just a gentle reminder that we can't give medical advice here.",
        "I've locked this thread as it's gone a bit off track.",
        "Glad to see everyone supporting each other.",
    ),
}

TOPIC_POOLS: dict[str, tuple[str, ...]] = {
    "anxiety": (
        "My anxiety has been through the roof.", "I overthink every single conversation.",
        "I can't stop replaying things I said.", "My chest gets tight and I can't focus.",
        "I avoid phone calls at all costs.", "Even small things like posting a letter feel massive.",
        "I get that horrible dread feeling first thing in the morning.", "The what-ifs are relentless.",
        "I've started avoiding the places where I've had panic attacks before.",
        "My stomach is in knots all the time.", "I rehearse every conversation before it happens.",
        "I'm constantly waiting for something bad to happen.",
        "Health anxiety is the worst, every twinge is something terrible.",
        "I was sat in the waiting room with my heart going like the clappers.",
        "The anxiety makes me so tired, it's like running a marathon all day.",
        "I've been {feel} all week.",
    ),
    "low_mood": (
        "I've been feeling really flat.", "Nothing feels enjoyable anymore.",
        "I can't remember the last time I laughed properly.", "It's like everything is grey.",
        "I've stopped replying to messages.", "I've been feeling blue and can't explain why.",
        "Even things I used to love feel pointless.", "Getting out of bed feels like climbing a mountain.",
        "I've been living on toast and not much else.", "I haven't showered in days and I hate it.",
        "My mood has been low for {dur} now.", "The winter months always hit me hard.",
        "I feel numb most of the time.",
        "Some days I feel like a burden to everyone, I know it's the depression talking.",
        "Some days I just stare at the wall.",
    ),
    "panic": (
        "My heart was racing and I genuinely thought I was dying.",
        "I had to get off the bus two stops early.",
        "The pins and needles in my hands freak me out every time.",
        "I've started carrying a bottle of water and mints everywhere.",
        "Breathing in for 4 and out for 7 helps a bit.", "I had two panic attacks {when}.",
        "I ended up in A&E thinking it was my heart and it was a panic attack.",
        "The fear of having another panic attack is almost worse than the panic attack itself.",
        "I got dizzy in the queue and had to leave my shopping.",
        "Panic attacks at night are the worst, I wake up already panicking.",
        "My propranolol helps with the shaking but not the thoughts.",
    ),
    "waiting": (
        "I've been on the waiting list for {wait} now.", "They said the wait for {therapy} is {wait}.",
        "I rang to check I was still on the list and they couldn't find me.",
        "It feels like you have to be in crisis to get seen.", "The letter said 'up to {wait}'.",
        "The waiting is the hardest part.", "I've been passed between services so many times.",
        "I got a text saying my appointment had been moved again.",
        "How are you meant to cope while you wait?", "I was told to ring back in {dur}.",
        "The triage call was twenty minutes and then nothing.",
    ),
    "gp": (
        "I finally rang the GP at 8am and actually got through.", "The GP upped my {medup}.",
        "I get so anxious before GP appointments that I forget everything I wanted to say.",
        "I wrote everything down on my phone before the appointment.",
        "The receptionist asked what it was about and I just froze.", "My GP referred me to {service}.",
        "I had a telephone appointment and it was over in five minutes.",
        "I was number 27 in the queue at 8am.", "The GP was lovely and didn't rush me at all.",
        "I've got a GP review in two weeks.", "I asked for a fit note and felt like a fraud.",
        "My GP said it sounds like generalised anxiety.",
    ),
    "meds": (
        "I've been on {meddose} for {dur}.", "The side effects in the first fortnight were rough.",
        "I was so worried about starting meds but it's been okay.",
        "I take my {med} in the morning now because it was messing with my sleep.",
        "Coming off {med} slowly with my GP.", "I feel a bit spaced out since going up to {dose}.",
        "The yawning on {med} is ridiculous.", "I keep forgetting whether I've taken my tablet.",
        "Meds aren't a magic fix but they've given me a floor to stand on.",
        "I was on {med} before and it stopped working.", "Has anyone switched from {med} to something else?",
        "I'm on {doseof} and still feel rubbish.",
    ),
    "therapy": (
        "My therapist said something today that really stuck.", "CBT felt a bit like homework at first.",
        "I'm on session {n} of 12.", "We've been doing a lot of work on thought records.",
        "Therapy is hard work, nobody tells you that.", "I cried through the whole session.",
        "I came out of therapy feeling worse and they said that's normal sometimes.",
        "My counsellor is helping me set boundaries.", "I finally opened up about stuff from years ago.",
        "The online sessions are easier for me than going in.",
        "I've got six sessions of {therapy} and I'm scared of what happens after.",
    ),
    "camhs": (
        "My daughter has been referred to CAMHS and we're still waiting.",
        "CAMHS discharged me when I turned 18 and I feel like I've fallen off a cliff.",
        "The school have been really supportive to be fair.",
        "My son won't talk to me about how he's feeling.", "The CAMHS appointment finally came through.",
        "As a parent you feel so helpless.", "My teenager is refusing to go to school.",
        "The transition from CAMHS to adult services has been a mess.",
        "The school counsellor has been a lifeline.", "We've been on the CAMHS list for {wait}.",
    ),
    "uni": (
        "Deadlines are piling up and I can't start anything.", "I haven't been to a lecture in weeks.",
        "Uni stress is getting to me.",
        "I emailed my personal tutor and they were really kind about an extension.",
        "Everyone else seems to have their life together at uni.", "Exam season is making my anxiety awful.",
        "I'm thinking about dropping out.", "The student wellbeing service has a drop in on Wednesdays.",
        "Living in halls is so noisy and I can't switch off.",
        "My dissertation is due in {dur} and I've barely started.",
        "I'm scared of failing and letting my family down.", "Freshers was the loneliest week of my life.",
    ),
    "work": (
        "Work is really stressful at the moment.", "My manager doesn't understand mental health at all.",
        "I've been signed off for two weeks.", "Sunday nights are the worst, the dread about Monday.",
        "I had a return to work meeting and it was actually okay.",
        "I'm scared they'll think I'm making it up.", "Occupational health have suggested a phased return.",
        "I've been doing 50 hour weeks and I'm burnt out.",
        "I had to leave a meeting because I felt a panic attack coming.",
        "There's a restructure at work and everyone's on edge.",
        "I'm on a zero hours contract and can't afford to be off.", "I'm dreading my appraisal.",
    ),
    "selfharm": (
        "I've been struggling with urges to self-harm again.", "I'm {n} weeks free from self-harm today.",
        "I slipped up last night after a long time free and I feel so ashamed.",
        "I told my GP about the self-harm and they were kind, not judgemental.",
        "Distraction helps me when the urges come, I've got a list on my phone.",
        "A slip doesn't cancel out all the progress you've made.",
        "I've been using my safety plan tonight.",
        "If you're not safe right now please reach out to someone tonight.",
        "I'm scared to tell anyone about the self-harm.",
    ),
    "lonely": (
        "I feel so alone.", "Weekends are the worst, I don't speak to anyone from Friday to Monday.",
        "I moved here for work and don't know anyone.", "Everyone seems to have plans except me.",
        "This forum is honestly the only place I feel understood.", "It helps knowing I'm not the only one.",
        "I've drifted away from my friends and don't know how to fix it.",
        "I eat tea on my own every night and it gets to me.",
        "Reading other people's posts makes me feel less alone.",
        "I went to a support group meeting and didn't say a word, but I went.",
    ),
    "sleep": (
        "I haven't slept properly in {dur}.",
        "I'm awake at 3am again with my brain going a million miles an hour.",
        "I've started listening to sleep stories.", "My sleep pattern is all over the place.",
        "I'm so tired during the day but wide awake at night.",
        "Mirtazapine knocks me out but I feel groggy all morning.", "Up at dawn again for no reason.",
        "I've been napping in the day and then can't sleep at night.",
    ),
    "family": (
        "{Rel} keeps telling me to just cheer up.", "Christmas with the family is going to be hard.",
        "I finally told {rel} how I've been feeling.", "My family don't really believe in mental health.",
        "{Rel} has been amazing but I feel guilty leaning on them.",
        "Things at home are really tense.", "I'm looking after my mum and it's taking it out of me.",
        "I don't want to worry my parents.",
        "My anxiety rose again as soon as we started talking about money.",
    ),
}
TOPICS = tuple(TOPIC_POOLS)
TOPIC_WEIGHTS = (16, 14, 9, 8, 9, 9, 8, 4, 7, 8, 3, 6, 5, 4)

FILLERS = (
    "Sorry if that doesn't make sense.", "I don't know.", "Anyway.", "It's a lot.", "Ugh.",
    "If that makes sense?", "Honestly.", "I know it sounds silly.", "Maybe that's normal, I don't know.",
    "I'm rambling now.", "Bit of a rollercoaster.", "It is what it is.", "Just being honest.",
    "Mark my words, I'll be back on here tomorrow moaning again.", "Will it ever get easier?",
    "Hope that makes sense.", "I've lost a bit of faith in the system tbh.",
    "Paid the phone bill and then burst into tears, brilliant.", "Grace period on the rent is nearly up too.",
    "Dawn chorus is going already.", "Roll on summer.", "Jack of all trades, master of none, that's me.",
    "Hope this helps a bit.", "I will try again tomorrow.", "I hope that's okay to say.",
    "My saving grace has been the dog.", "Feeling blue doesn't even cover it.",
    "Mood rose a bit after lunch.",
)
DECOYS = (
    "Samaritans are on 116 123, any time day or night.",
    "If talking on the phone is too much you can text SHOUT to 85258.",
    "NHS 111 can help too, a lot of areas have a mental health option now.",
    "If you're not safe please ring 999 or go to A&E.",
    "I rang 111 and they were actually really helpful.",
    "The Samaritans number is 116 123, it's free from any phone.",
    "Shout 85258 got me through a really bad night.",
    "I've been on {meddose} for {dur} now.",
    "I'm on {medup2}.",
    "I hope you get some sleep tonight.", "I will keep you in my thoughts.",
    "Been feeling blue all week.", "Will it always be like this?", "Hope you're okay.",
    "I ended up ringing 999 and they were really kind.",
    "The summer holidays are always hard.", "Mark this down as a good day.",
    "My heart rate was 120 just sitting there.", "I've been awake since 4.",
    "Day 14 of no self-harm.", "I have 2 weeks left on the waiting list apparently.",
)
SHORT_SYMPATHY = (
    "Sending hugs {emo}", "Same here x", "Thinking of you.", "This. Exactly this.",
    "Thanks for sharing x", "You've got this {emo}", "Any update on this?", "Hope today is kinder to you.",
    "Bumping this up.", "Me too, honestly.", "Big hugs xx", "Oh love {emo}", "I felt this.",
    "Same boat here.", "Here if you need to talk.", "Hope you're okay x", "You're not alone x",
    "Hang in there.", "Holding space for you {emo}", "Ugh, sorry you're dealing with this.",
    "Sending love your way.", "Hope it went okay?",
)
SHORT_CONGRATS = (
    "So proud of you!", "Well done you {emo}", "Amazing news, well done!", "That's brilliant news!",
    "Yes! Love this {emo}", "This made my day.", "Go you {emo}", "Thanks for sharing this x",
)
NARRATIVE = (
    "It started about {dur} ago and it's just got worse.",
    "I thought I was coping but then I stopped sleeping properly.",
    "Looking back, the signs were there for ages.",
    "I kept telling myself it was just a rough patch.", "Then last week it all came to a head.",
    "I ended up phoning in sick and spending the day in bed.", "The next morning I rang the GP.",
    "I don't really know where I go from here.",
    "Part of me feels relieved that I've finally said it out loud.",
    "I've not told anyone in real life about any of this.", "{Rel} noticed something was up before I did.",
    "It's been building up for a while if I'm honest.",
    "I had a good spell over Christmas and then January hit.",
    "I've tried to keep busy but it just catches up with me.",
    "Every time I think I'm getting somewhere something knocks me back.",
    "I was fine at the start of the week.",
    "By Wednesday I could barely get out of bed.",
    "I managed to get to the appointment, which felt like a big deal.",
    "I sat in the car park for ten minutes before I could go in.", "I came home and just slept for hours.",
    "It's hard to explain to people who haven't been through it.",
    "I used to be really outgoing, I barely recognise myself.",
    "I know I need to ask for help but I keep putting it off.",
    "When I finally said it out loud it felt less scary.",
    "I keep going over the same thoughts again and again.",
    "I've been trying to do the things that usually help, walks, music, seeing people.",
    "Some of it helps a bit, some of it doesn't.", "I'm trying to be patient with myself.",
    "I know it's not a straight line but it's hard when you slip back.",
    "I told myself I'd post here if it got bad again, so here I am.",
    "Writing this down is helping a bit already.",
    "I've been off social media for a week and it's helped a bit.",
    "It's the evenings that get me, once everyone's gone to bed.",
    "I got the train home {when} and spent the whole journey trying not to cry.",
    "Last time I felt like this it took months to come out of it.", "The worst bit is not knowing why.",
    "I've made a list of things to bring up next time.", "I'm so used to masking that nobody noticed.",
    "I keep apologising for everything, basically.", "My head's been foggy and I keep forgetting things.",
    "I just want to feel like myself again.", "I've had {dur} of feeling {feel} and I'm worn out.",
    "I did {activity} because someone on here suggested it.", "It's not dramatic, it's just relentless.",
)
CONNECTIVES = ("And ", "But ", "So ", "Then ", "Also ", "Plus ", "Honestly ", "To be honest ", "Tbh ",
               "On top of that ", "The thing is ", "Anyway ", "And yeah, ", "Oh and ", "Even so, ",
               "Mind you, ")
# Decoy gratitude: must NOT match \bthank\s+you\s+for\b.
THANKS_DECOYS = (
    "Thanks for {tyobj}.", "Thank u for {tyobj} x", "Thankyou for {tyobj}.", "Thank you, for real.",
    "Thank you, for what it's worth I feel a bit better.",
    "I never got to thank you formally for the advice.",
    "Thank you so much for {tyobj}.", "Thank you all for {tyobj}.", "Thanks so much for {tyobj} x",
    "Thanks again for {tyobj}.", "ty for {tyobj} x", "Massive thanks for {tyobj}.",
    "I wanted to thank you formally, the mods have been great.", "Can't thank you enough.",
)
THANKS_OBJECTS = (
    "listening", "reading", "replying", "the replies", "all the replies", "sharing this", "being so kind",
    "taking the time to reply", "the advice", "this", "posting this", "checking in", "the kind words",
    "being here", "your message", "the support", "saying that", "the reminder", "explaining it so well",
    "being honest", "not judging", "the tips about sleep", "letting me vent", "your reply", "understanding",
    "the encouragement", "the hugs", "writing this", "sharing your story", "the suggestions",
)
THANKS_ENDS = (
    ".", ".", ".", ", it really helped.", ", it means more than you know.", " {emo}", "!", " x", " xx",
    ", I really needed that today.", ", honestly.", ". I read it about five times.",
    ", it made me cry in a good way.", "!!", ", you're all amazing.",
)
THANKS_COMMA_FORMS = (
    "{TY}, well, everything.", "{TY}, honestly, all of it.", "{TY}, and I mean this, being here.",
)
THANKS_LONG = (
    "I just wanted to come back and say {ty} {tyobj}, I didn't expect anyone to reply and it helped.",
    "Honestly {ty} {tyobj}, I was in a really dark place when I posted.",
    "Just wanted to say {ty} {tyobj}{tyend}",
    "Seriously, {ty} {tyobj}{tyend}",
    "{TY} {tyobj}{tyend}", "{TY} {tyobj}{tyend}", "{TY} {tyobj}{tyend}",
    "And {ty} {tyobj}{tyend}",
    "I read every reply and {ty} {tyobj}.",
    "Can I just say {ty} {tyobj}, this forum is the only place I feel understood.",
)

# Identifier sentences. {MYAGE}/{MYNAME}/{MYTOWN} use the author's persona.
ID_TEMPLATES: dict[str, tuple[str, ...]] = {
    "PERSON": (
        "My friend {WNAME} said I should just give it a go.",
        "{WNAME} from my support group has been checking in every day.",
        "My therapist {FNAME} is lovely.", "honestly my sister {fname} has been a lifesaver.",
        "Went for a coffee with {FULLNAME} from work and actually enjoyed it.",
        "{FNAME} at the crisis team was so kind on the phone.",
        "My CPN, {FNAME}, has been off sick so I've not seen anyone for weeks.",
        "Dr {SURNAME} at {GP} actually listened for once.",
        "My little brother {MNAME} made me a card and I cried.",
        "I told {FNAME} everything and they didn't judge me at all.",
        "My mum and {WNAME} (her partner) came round with food.",
        "{FULLNAME} is my support worker and honestly they're brilliant.",
        "my friend {wname} said I should post here.", "{WNAME} said I'm being too hard on myself.",
        "My nan {FNAME_F} is the only one I can really talk to.",
        "My sister {FNAME_F} came with me to the GP.",
        "My step-dad {MNAME} keeps saying I just need to get out more.",
        "My key worker {WNAME} is helping me fill in the forms.",
        "me and {fname} had a proper chat last night.", "My partner {FNAME} doesn't really get it.",
    ),
    "USERNAME": (
        "{HANDLE} posted something similar last week, might be worth a look.",
        "Feel free to message me, I'm {BAREHANDLE} on most sites.",
        "Shout out to {HANDLE} for the advice last week.",
        "{HANDLE} I hope you're doing okay, haven't seen you post in a while.",
        "Not sure if {HANDLE} is still around but their post really helped me.",
    ),
    "EMAIL": (
        "If anyone wants to chat my email is {EMAIL}.",
        "You can email me at {EMAIL} if you don't want to post on here.",
        "I emailed the team at {EMAIL} and heard nothing back.", "Drop me a line at {EMAIL} x",
    ),
    "PHONE": (
        "Text me on {MOBILE} if you ever need to talk.", "My number is {MOBILE}, I'm usually up late.",
        "The surgery number is {LANDLINE} if anyone local needs it.", "Ring me on {PHONE} anytime x",
        "My mum's landline is {LANDLINE} if my mobile's dead.", "WhatsApp me on {MOBILE}.",
    ),
    "POSTCODE": (
        "I'm in {OUTCODE}, does anyone know of any groups nearby?",
        "Anyone else round {OUTCODE}? Would be nice to meet up for a walk.",
        "My postcode is {POSTCODE} and the system says I'm not in their catchment.",
        "They sent my letter to {POSTCODE} which isn't even my address.",
    ),
    "NHS_NUMBER": (
        "The letter had my NHS number on it ({NHS}) and it went to the wrong house.",
        "They asked for my NHS number, it's {NHS}, and then said I wasn't on the system.",
        "My NHS number is {NHS} if anyone from the trust is reading this lol.",
    ),
    "NI_NUMBER": (
        "HR asked for my NI number ({NI}) and I panicked that they'd find out about my sick notes.",
        "Filled in the PIP form, NI number {NI}, and now the waiting begins.",
        "My national insurance number is {NI}, is that the right format for the form?",
    ),
    "ADDRESS": (
        "I live at {ADDRESS} if anyone wants to send a card haha.",
        "We moved to {ADDRESS}, {TOWN} last month and I've not settled.",
        "The support group meets at {ADDRESS} on Tuesdays.", "My new flat is {ADDRESS}, {TOWN} {POSTCODE}.",
    ),
    "LOCATION": (
        "I'm from {TOWN}.", "Anyone else from {TOWN}?",
        "I live in {HOOD} and the waiting list here is {wait}.",
        "Moved to {TOWN} for uni and don't know anyone.", "Grew up in {TOWN2} but live in {TOWN} now.",
        "The services in {TOWN} are stretched to breaking point.",
        "Went for a walk round {HOOD} today and it helped a bit.",
        "I'm in {MYTOWN} if that makes any difference.",
    ),
    "ORG": (
        "I work at {EMPLOYER} in {HOOD}.", "My manager at {EMPLOYER} has been surprisingly understanding.",
        "I'm in year 12 at {SCHOOL}.", "My son goes to {SCHOOL} and they've been great.",
        "I was admitted to {HOSPITAL} last year.", "I'm registered at {GP}.", "I'm at {UNI} doing nursing.",
        "My appointment is at {HOSPITAL} on {APPTDATE}.",
        "Just started a job at {EMPLOYER}, first week done.",
        "The wellbeing team at {UNI} have been okay actually.",
    ),
    "DATE": (
        "I was born {DOB}.", "My birthday is {BDAY} and I'm dreading it.", "It's my birthday on {BDAY}.",
        "My assessment is on {APPTDATE}.", "They've given me a date: {APPTDATE}.",
    ),
    "AGE": (
        "I'm {MYAGE} and I feel like I'm wasting my life.", "I'm {MYAGEU} and still live with my parents.",
        "{MYAGE}, {MYTOWN}, first time posting.", "My son is {AGE} and he's been really struggling.",
        "I'm {MYAGE} and only just getting help for this.", "I'm a {MYAGEU} {gender} if that matters.",
    ),
    "URL": (
        "I wrote about it on my blog: {URL}", "I've been making art about it, {URL} if anyone wants to see.",
        "Here's my fundraising page for the walk: {URL}", "I put my crisis plan template up at {URL}",
    ),
}
ID_TYPE_WEIGHTS = {
    "PERSON": 22, "USERNAME": 6, "EMAIL": 5, "PHONE": 6, "POSTCODE": 5, "NHS_NUMBER": 3, "NI_NUMBER": 3,
    "ADDRESS": 4, "LOCATION": 14, "ORG": 12, "DATE": 7, "AGE": 10, "URL": 3,
}

# --------------------------------------------------------------------------- entity values


def nhs_check_digit(nine: str) -> int | None:
    """Modulus-11 check digit for the first nine digits, or None when 10 (unusable)."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(nine))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_number_valid(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if len(digits) != 10:
        return False
    check = nhs_check_digit(digits[:9])
    return check is not None and check == int(digits[9])


def _nhs(rng: Random) -> str:
    while True:  # the 999 range is reserved for testing and never issued
        nine = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = nhs_check_digit(nine)
        if check is not None:
            digits = nine + str(check)
            form = rng.random()
            if form < 0.5:
                return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
            if form < 0.8:
                return digits
            return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def _ni(rng: Random) -> str:
    prefix = NI_PREFIXES[rng.randrange(len(NI_PREFIXES))]
    digits = f"{rng.randrange(1_000_000):06d}"
    suffix = "ABCD"[rng.randrange(4)]
    form = rng.random()
    if form < 0.55:
        return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    if form < 0.85:
        return f"{prefix}{digits}{suffix}"
    return f"{prefix}{digits}{suffix}".lower()


def _mobile(rng: Random) -> str:
    tail = f"{rng.randrange(1000):03d}"
    form = rng.random()
    if form < 0.35:
        return f"07700 900{tail}"
    if form < 0.55:
        return f"07700900{tail}"
    if form < 0.72:
        return f"+44 7700 900{tail}"
    if form < 0.85:
        return f"+44 (0)7700 900{tail}"
    if form < 0.93:
        return f"07700 900 {tail}"
    return f"+447700900{tail}"


def _landline(rng: Random, code: str) -> str:
    prefix, width = LANDLINE_RANGES[code]
    number = prefix + f"{rng.randrange(10 ** width):0{width}d}"
    form = rng.random()
    if form < 0.6:
        return number
    if form < 0.75:
        return number.replace(" ", "")
    if form < 0.9:
        return "+44 " + number[1:]
    area, rest = number.split(" ", 1)
    return f"({area}) {rest}"


def _inward(rng: Random) -> str:
    return str(rng.randrange(10)) + INWARD_LETTERS[rng.randrange(20)] + INWARD_LETTERS[rng.randrange(20)]


def _postcode(rng: Random, place: tuple) -> str:
    outward = place[2][rng.randrange(len(place[2]))]
    if outward == "SW1A" and rng.random() < 0.5:
        code = "SW1A 1AA"
    else:
        code = f"{outward} {_inward(rng)}"
    form = rng.random()
    if form < 0.65:
        return code
    if form < 0.8:
        return code.replace(" ", "")
    if form < 0.92:
        return code.lower().replace(" ", "")
    return code.lower()


def _outcode(rng: Random, place: tuple) -> str:
    hoods = place[1]
    outward = hoods[rng.randrange(len(hoods))][1]
    return outward.lower() if rng.random() < 0.2 else outward


def _handle(adj: int, noun: int, num: int, style: int) -> str:
    a, n = HANDLE_ADJ[adj], HANDLE_NOUN[noun]
    if style == 0:
        return f"{a}{n}_{num}"
    if style == 1:
        return f"{a.capitalize()}{n.capitalize()}{num}"
    if style == 2:
        return f"{a}_{n}"
    if style == 3:
        return f"{a}.{n}{num % 100}"
    return f"{n}_{a}{num}"


def _email(rng: Random, first: str, last: str, handle: str) -> str:
    local_form = rng.random()
    if local_form < 0.35:
        local = f"{first}.{last}".lower()
    elif local_form < 0.6:
        local = f"{first[0]}{last}{rng.randrange(70, 100)}".lower()
    elif local_form < 0.8:
        local = handle.lower().replace(".", "_")
    else:
        local = f"{first}_{last[0]}".lower()
    domain = ("example", ("com", "org", "net")[rng.randrange(3)])
    form = rng.random()
    if form < 0.7:
        email = f"{local}@{domain[0]}.{domain[1]}"
        return email if rng.random() < 0.9 else email.capitalize()
    if form < 0.85:
        return f"{local} [at] {domain[0]} [dot] {domain[1]}"
    if form < 0.95:
        return f"{local} at {domain[0]} dot {domain[1]}"
    return f"{local}(at){domain[0]}.{domain[1]}"


def _url(rng: Random, handle: str) -> str:
    h = handle.lower().replace(".", "")
    domain = "example." + ("com", "org", "net")[rng.randrange(3)]
    slug = URL_SLUGS[rng.randrange(len(URL_SLUGS))]
    form = rng.randrange(6)
    if form == 0:
        return f"https://www.{domain}/{h}"
    if form == 1:
        return f"{domain}/blog/{slug}"
    if form == 2:
        return f"https://{h.replace('_', '')}.{domain}"
    if form == 3:
        return f"www.{domain}/u/{h}"
    if form == 4:
        return f"http://{domain}/~{h}/{slug}"
    return f"https://{domain}/fundraising/{h}-{rng.randrange(100, 999)}"


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }"


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _day_month(rng: Random) -> tuple[int, int]:
    month = rng.randrange(12)
    return rng.randrange(1, _MONTH_DAYS[month] + 1), month


def _dob(rng: Random, year: int) -> str:
    day, month = _day_month(rng)
    form = rng.randrange(5)
    if form == 0:
        return f"{day:02d}/{month + 1:02d}/{year}"
    if form == 1:
        return f"{day}/{month + 1}/{year % 100:02d}"
    if form == 2:
        return f"{day:02d}.{month + 1:02d}.{year}"
    if form == 3:
        return f"{_ordinal(day)} {MONTHS[month]} {year}"
    return f"{day} {MONTHS[month][:3]} {year}"


def _bday(rng: Random) -> str:
    day, month = _day_month(rng)
    form = rng.randrange(4)
    if form == 0:
        return f"{_ordinal(day)} {MONTHS[month]}"
    if form == 1:
        return f"{MONTHS[month]} {_ordinal(day)}"
    if form == 2:
        return f"the {_ordinal(day)} of {MONTHS[month]}"
    return f"{day} {MONTHS[month]}"


def _appt(rng: Random) -> str:
    day, month = _day_month(rng)
    form = rng.randrange(3)
    if form == 0:
        return f"{_ordinal(day)} {MONTHS[month]}"
    if form == 1:
        return f"{day:02d}/{month + 1:02d}"
    return f"{day} {MONTHS[month][:3]}"


def _gp(rng: Random) -> str:
    return f"{GP_STEMS[rng.randrange(len(GP_STEMS))]} {GP_KINDS[rng.randrange(len(GP_KINDS))]}"


def _address(rng: Random) -> str:
    street = STREETS[rng.randrange(len(STREETS))]
    number = rng.randrange(1, 160)
    form = rng.random()
    if form < 0.75:
        return f"{number} {street}"
    if form < 0.9:
        return f"Flat {rng.randrange(1, 12)}, {number} {street}"
    return f"{number}{'ab'[rng.randrange(2)]} {street}"


# --------------------------------------------------------------------------- text assembly


class Persona:
    """What a post may reveal about its author (stable per user)."""

    __slots__ = ("first", "last", "age", "place", "handle", "gender")

    def __init__(self, first: str, last: str, age: int, place: tuple, handle: str, gender: str) -> None:
        self.first, self.last, self.age = first, last, age
        self.place, self.handle, self.gender = place, handle, gender


class PostContext:
    __slots__ = ("author", "op_handle", "place", "year")

    def __init__(self, author: Persona, op_handle: str, place: tuple, year: int) -> None:
        self.author, self.op_handle, self.place, self.year = author, op_handle, place, year


def _pick(rng: Random, seq: Sequence[str]) -> str:
    return seq[int(rng.random() * len(seq))]


def _first_name(rng: Random) -> str:
    return _pick(rng, WORD_NAMES) if rng.random() < 0.15 else _pick(rng, FIRST_NAMES)


def _random_handle(rng: Random) -> str:
    return _handle(rng.randrange(len(HANDLE_ADJ)), rng.randrange(len(HANDLE_NOUN)), rng.randrange(1, 100),
                   rng.randrange(5))


def _random_place(rng: Random) -> tuple:
    return PLACES[bisect.bisect(_PLACE_CUM, rng.random() * _PLACE_CUM[-1])]


_PLACE_CUM = list(itertools.accumulate(PLACE_WEIGHTS))

SlotFn = Callable[[Random, PostContext], str]
ENTITY_SLOTS: dict[str, tuple[str, SlotFn]] = {
    "FNAME": ("PERSON", lambda r, c: _first_name(r)),
    "fname": ("PERSON", lambda r, c: _first_name(r).lower()),
    "WNAME": ("PERSON", lambda r, c: _pick(r, WORD_NAMES)),
    "wname": ("PERSON", lambda r, c: _pick(r, WORD_NAMES).lower() if r.random() < 0.5
              else _pick(r, WORD_NAMES)),
    "MNAME": ("PERSON", lambda r, c: _pick(r, WORD_NAMES_M) if r.random() < 0.6
              else _pick(r, FIRST_NAMES[40:])),
    "FNAME_F": ("PERSON", lambda r, c: _pick(r, FEMALE_NAMES)),
    "FULLNAME": ("PERSON", lambda r, c: f"{_first_name(r)} {_pick(r, SURNAMES)}"),
    "SURNAME": ("PERSON", lambda r, c: _pick(r, SURNAMES)),
    "MYNAME": ("PERSON", lambda r, c: c.author.first),
    "MODNAME": ("PERSON", lambda r, c: _pick(r, FIRST_NAMES)),
    "HANDLE": ("USERNAME", lambda r, c: "@" + _random_handle(r)),
    "BAREHANDLE": ("USERNAME", lambda r, c: c.author.handle),
    "OPHANDLE": ("USERNAME", lambda r, c: "@" + c.op_handle),
    "EMAIL": ("EMAIL", lambda r, c: _email(r, c.author.first, c.author.last, c.author.handle)),
    "MOBILE": ("PHONE", lambda r, c: _mobile(r)),
    "LANDLINE": ("PHONE", lambda r, c: _landline(r, c.place[3])),
    "PHONE": ("PHONE", lambda r, c: _mobile(r) if r.random() < 0.6 else _landline(r, c.place[3])),
    "POSTCODE": ("POSTCODE", lambda r, c: _postcode(r, c.place)),
    "OUTCODE": ("POSTCODE", lambda r, c: _outcode(r, c.place)),
    "NHS": ("NHS_NUMBER", lambda r, c: _nhs(r)),
    "NI": ("NI_NUMBER", lambda r, c: _ni(r)),
    "ADDRESS": ("ADDRESS", lambda r, c: _address(r)),
    "TOWN": ("LOCATION", lambda r, c: c.place[0]),
    "TOWN2": ("LOCATION", lambda r, c: _random_place(r)[0]),
    "MYTOWN": ("LOCATION", lambda r, c: c.author.place[0]),
    "HOOD": ("LOCATION", lambda r, c: _pick(r, c.place[1])[0]),
    "EMPLOYER": ("ORG", lambda r, c: _pick(r, EMPLOYERS)),
    "SCHOOL": ("ORG", lambda r, c: _pick(r, SCHOOLS)),
    "HOSPITAL": ("ORG", lambda r, c: _pick(r, c.place[4])),
    "GP": ("ORG", lambda r, c: _gp(r)),
    "UNI": ("ORG", lambda r, c: _pick(r, UNIS)),
    "DOB": ("DATE", lambda r, c: _dob(r, c.year - c.author.age - (1 if r.random() < 0.5 else 0))),
    "BDAY": ("DATE", lambda r, c: _bday(r)),
    "APPTDATE": ("DATE", lambda r, c: _appt(r)),
    "MYAGE": ("AGE", lambda r, c: str(c.author.age)),
    "MYAGEU": ("AGE", lambda r, c: _age_unit(r, c.author.age)),
    "AGE": ("AGE", lambda r, c: str(r.randrange(11, 18))),
    "URL": ("URL", lambda r, c: _url(r, c.author.handle)),
}


def _age_unit(rng: Random, age: int) -> str:
    form = rng.randrange(3)
    return (f"{age} year old", f"{age}yo", f"{age} y/o")[form]


_SLOT_RE = re.compile(r"\{(\w+)\}")

# A compiled template is a tuple of parts: str = literal; (name, kind) = slot, where kind
# is an entity type for ENTITY_SLOTS, or None for a generic value.
Compiled = tuple


def compile_template(template: str) -> Compiled:
    parts: list[Any] = []
    for index, piece in enumerate(_SLOT_RE.split(template)):
        if index % 2 == 0:
            if piece:
                parts.append(piece)
        elif piece in ENTITY_SLOTS:
            parts.append((piece, ENTITY_SLOTS[piece][0]))
        elif piece in GENERIC_SLOTS or piece in _SPECIAL_GENERIC:
            parts.append((piece, None))
        else:
            raise ValueError(f"unknown slot {{{piece}}} in template {template!r}")
    return tuple(parts)


_SPECIAL_GENERIC = {"Rel", "tyobj", "tyend", "ty", "TY", "gender", "meddose", "medup", "medup2", "doseof"}


def _words(compiled: Compiled) -> int:
    count = 0
    for part in compiled:
        if isinstance(part, str):
            count += len(part.split())
        else:
            count += 1 if part[0] in ("emo", "n", "tyend") else 2
    return count


class Pool:
    """Compiled templates with their estimated word counts."""

    __slots__ = ("items", "words")

    def __init__(self, templates: Sequence[str]) -> None:
        self.items = tuple(compile_template(t) for t in templates)
        self.words = tuple(_words(c) for c in self.items)


POOLS = {name: Pool(items) for name, items in KIND_POOLS.items()}
TOPIC_POOLS_C = {name: Pool(items) for name, items in TOPIC_POOLS.items()}
ID_POOLS = {name: Pool(items) for name, items in ID_TEMPLATES.items()}
OPENERS_STARTER_C = Pool(OPENERS_STARTER)
OPENERS_REPLY_C = Pool(OPENERS_REPLY)
CLOSERS_STARTER_C = Pool(CLOSERS_STARTER)
CLOSERS_REPLY_C = Pool(CLOSERS_REPLY)
FILLERS_C = Pool(FILLERS)
DECOYS_C = Pool(DECOYS)
SHORT_SYMPATHY_C = Pool(SHORT_SYMPATHY)
SHORT_CONGRATS_C = Pool(SHORT_CONGRATS)
NARRATIVE_C = Pool(NARRATIVE)
THANKS_DECOYS_C = Pool(THANKS_DECOYS)
THANKS_LONG_C = Pool(THANKS_LONG)
THANKS_COMMA_C = Pool(THANKS_COMMA_FORMS)
THANKS_SHORT_C = Pool(("{TY} {tyobj}{tyend}", "{TY} {tyobj}", "{TY} {tyobj} {emo}"))
OP_HANDLE_OPENER = compile_template("{OPHANDLE}")
SIGNOFF_NAME = (compile_template("{MYNAME} x"), compile_template("- {MYNAME}"), compile_template("{MYNAME}"),
                compile_template("Love, {MYNAME} xx"))
MOD_SIGNOFFS = (compile_template("– Mod {MODNAME}"), compile_template("- Mod {MODNAME}"),
                compile_template("{MODNAME} (Moderator)"), compile_template("— {MODNAME}, Mod Team"),
                compile_template("Mod {MODNAME}"))
ID_TYPES = tuple(ID_TYPE_WEIGHTS)

# How each kind of post is put together: (source, weight, rank, cap). Sentences are drawn
# by weight until the post is long enough, then ordered by rank (acknowledge → share →
# advise → ask), so a reply reads "Oh hun. That sounds tough. I was the same … Have you …?".
# A source past its cap falls back to the post's topic.
SECTIONS: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "vent": (("vent", 30, 1, 4), ("topic", 32, 2, 99), ("narrative", 28, 2, 99), ("question", 5, 3, 1),
             ("filler", 5, 3, 1)),
    "badday": (("badday", 30, 1, 3), ("narrative", 33, 2, 99), ("topic", 27, 2, 99), ("question", 5, 3, 1),
               ("filler", 5, 3, 1)),
    "question": (("topic", 35, 1, 99), ("narrative", 25, 1, 99), ("question", 35, 3, 3), ("filler", 5, 2, 1)),
    "checkin": (("checkin", 45, 1, 4), ("topic", 40, 2, 99), ("narrative", 10, 2, 99), ("filler", 5, 3, 1)),
    "goodnews": (("goodnews", 40, 1, 3), ("narrative", 30, 2, 99), ("topic", 25, 2, 99), ("filler", 5, 3, 1)),
    "intro": (("intro", 40, 0, 4), ("topic", 30, 1, 99), ("narrative", 20, 1, 99), ("question", 10, 3, 1)),
    "advice": (("ack", 15, 1, 2), ("experience", 20, 2, 99), ("topic", 15, 2, 99), ("advice", 45, 3, 5),
               ("askback", 5, 4, 1)),
    "support": (("ack", 45, 1, 3), ("experience", 20, 2, 3), ("topic", 15, 2, 99), ("advice", 15, 3, 2),
                ("askback", 5, 4, 1)),
    "experience": (("ack", 10, 1, 1), ("experience", 40, 2, 99), ("topic", 25, 2, 99),
                   ("narrative", 20, 2, 99), ("advice", 5, 3, 1)),
    "askback": (("ack", 35, 1, 2), ("topic", 25, 2, 99), ("experience", 10, 2, 99), ("askback", 30, 4, 2)),
    "update": (("update", 50, 1, 4), ("narrative", 25, 2, 99), ("topic", 25, 2, 99)),
    "mod": (("mod", 70, 1, 3), ("ack", 30, 0, 1)),
}
_SECTION_TABLES = {
    kind: (tuple(s[0] for s in spec), list(itertools.accumulate(s[1] for s in spec)),
           {s[0]: (s[2], s[3]) for s in spec})
    for kind, spec in SECTIONS.items()
}


def with_connective(compiled: Compiled, connective: str) -> Compiled:
    """``"My GP …"`` → ``"So my GP …"`` (keeps "I", acronyms and leading slots as they are)."""
    first = compiled[0]
    if not isinstance(first, str):
        return compiled
    if not (first.startswith(("I ", "I'")) or (len(first) > 1 and first[1].isupper())):
        first = first[0].lower() + first[1:]
    return (connective + first,) + tuple(compiled[1:])
_ID_CUM = list(itertools.accumulate(ID_TYPE_WEIGHTS.values()))
_TOPIC_CUM = list(itertools.accumulate(TOPIC_WEIGHTS))

# "thank you for" spellings: (text, weight). The consumer's pattern is
# \bthank\s+you\s+for\b, case-insensitive.
TY_CAPITAL = (("Thank you for", 62), ("Thank you\nfor", 6), ("Thank  you for", 5), ("THANK YOU FOR", 6),
              ("Thank You For", 4), ("Thank you  for", 3), ("thank you for", 14))
TY_LOWER = (("thank you for", 82), ("thank you\nfor", 5), ("thank  you for", 5), ("THANK YOU FOR", 4),
            ("thank you  for", 4))


def _weighted(options: Sequence[tuple[str, int]]) -> tuple[tuple[str, ...], list[int]]:
    return tuple(o for o, _ in options), list(itertools.accumulate(w for _, w in options))


_TY_CAP = _weighted(TY_CAPITAL)
_TY_LOW = _weighted(TY_LOWER)


def _choose_weighted(rng: Random, table: tuple[tuple[str, ...], list[int]]) -> str:
    values, cum = table
    return values[bisect.bisect(cum, rng.random() * cum[-1])]


class TextMaker:
    """Assembles one post from compiled templates, recording identifier spans as it goes."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    # -- rendering
    def _generic(self, name: str, ctx: PostContext) -> str:
        rng = self.rng
        if name == "Rel":
            value = _pick(rng, GENERIC_SLOTS["rel"])
            return value[0].upper() + value[1:]
        if name == "tyobj":
            return _pick(rng, THANKS_OBJECTS)
        if name == "tyend":
            return self._fill_simple(_pick(rng, THANKS_ENDS))
        if name == "ty":
            return _choose_weighted(rng, _TY_LOW)
        if name == "TY":
            return _choose_weighted(rng, _TY_CAP)
        if name == "gender":
            return ctx.author.gender
        if name in ("meddose", "medup", "medup2", "doseof"):
            med = _pick(rng, GENERIC_SLOTS["med"])
            doses = MED_DOSES[med]
            i = int(rng.random() * (len(doses) - 1))
            low, high = (f"{d:g}mg" for d in doses[i:i + 2])
            if name == "meddose":
                return f"{med} {high if rng.random() < 0.5 else low}"
            if name == "medup":
                return f"{med} to {high}"
            if name == "medup2":
                return f"{high} of {med} now, up from {low}"
            return f"{low} of {med}"
        return _pick(rng, GENERIC_SLOTS[name])

    def _fill_simple(self, text: str) -> str:
        if "{emo}" in text:
            return text.replace("{emo}", _pick(self.rng, EMOJI))
        return text

    def render(self, compiled: Compiled, ctx: PostContext, out: list[str], spans: list, pos: int,
               noapos: bool) -> int:
        for part in compiled:
            if isinstance(part, str):
                text = part.replace("'", "") if noapos else part
            else:
                name, etype = part
                if etype is None:
                    text = self._generic(name, ctx)
                    if noapos:
                        text = text.replace("'", "")
                else:
                    text = ENTITY_SLOTS[name][1](self.rng, ctx)
                    spans.append((pos, pos + len(text), etype))
            out.append(text)
            pos += len(text)
        return pos

    # -- choosing sentences
    def _from_pool(self, pool: Pool, used: set[int]) -> tuple[Compiled, int] | None:
        """A template not used yet in this post, or None when the pool is used up."""
        rng = self.rng
        n = len(pool.items)
        base = id(pool) * 1000
        index = int(rng.random() * n)
        for _ in range(3):
            if base + index not in used:
                break
            index = int(rng.random() * n)
        else:
            for step in range(n):
                if base + (index + step) % n not in used:
                    index = (index + step) % n
                    break
            else:
                return None
        used.add(base + index)
        return pool.items[index], pool.words[index]

    def _any_from_pool(self, pool: Pool, used: set[int]) -> tuple[Compiled, int]:
        picked = self._from_pool(pool, used)
        if picked is None:
            index = int(self.rng.random() * len(pool.items))
            return pool.items[index], pool.words[index]
        return picked

    def _id_sentence(self, used: set[int], forced: str | None = None) -> tuple[Compiled, int]:
        kind = forced or ID_TYPES[bisect.bisect(_ID_CUM, self.rng.random() * _ID_CUM[-1])]
        return self._any_from_pool(ID_POOLS[kind], used)

    def _thanks_sentence(self, short: bool) -> Compiled:
        rng = self.rng
        if short:
            return _pick(rng, THANKS_SHORT_C.items)
        if rng.random() < 0.07:
            return _pick(rng, THANKS_COMMA_C.items)
        return _pick(rng, THANKS_LONG_C.items)

    def _source_pool(self, source: str, topics: list[str], congrats: bool) -> Pool:
        if source == "topic":
            return TOPIC_POOLS_C[topics[-1] if len(topics) == 1 or self.rng.random() < 0.6
                                 else topics[int(self.rng.random() * len(topics))]]
        if source == "ack":
            return POOLS["congrats" if congrats else "sympathy"]
        if source == "narrative":
            return NARRATIVE_C
        if source == "filler":
            return FILLERS_C
        return POOLS[source]

    def make(self, ctx: PostContext, kind: str, topic: str, *, reply: bool, thread_kind: str, target: int,
             thanks: bool, n_ids: int, decoy: bool) -> tuple[str, list[tuple[int, int, str]]]:
        """Text and spans (start, end, entity_type) of one post."""
        rng = self.rng
        used: set[int] = set()
        sentences: list[Compiled] = []
        lead: list[Compiled] = []
        tail: list[Compiled] = []
        congrats = thread_kind == "goodnews"

        if target < 10:  # a short post: one line, maybe an emoji
            if thanks:
                lead.append(self._thanks_sentence(short=True))
            elif kind == "mod":
                lead.append(_pick(rng, POOLS["mod"].items))
            else:
                lead.append(_pick(rng, (SHORT_CONGRATS_C if congrats else SHORT_SYMPATHY_C).items))
            if reply and rng.random() < 0.08:
                lead.insert(0, OP_HANDLE_OPENER)
            if n_ids and rng.random() < 0.5:
                tail.append(self._id_sentence(used, "PERSON" if rng.random() < 0.5 else "LOCATION")[0])
        else:
            words = 0
            if kind == "mod":
                pass
            elif reply:
                if rng.random() < 0.06:
                    lead.append(OP_HANDLE_OPENER)
                    words += 1
                elif rng.random() < 0.2:
                    lead.append(_pick(rng, OPENERS_REPLY_C.items))
                    words += 1
            elif rng.random() < 0.45:
                compiled, w = self._any_from_pool(OPENERS_STARTER_C, used)
                lead.append(compiled)
                words += w
            if thanks:
                sentence = self._thanks_sentence(short=False)
                (lead if (reply and rng.random() < 0.6) else tail).append(sentence)
                words += _words(sentence)
            if kind != "mod" and rng.random() < 0.3:
                compiled, w = self._any_from_pool(CLOSERS_REPLY_C if reply else CLOSERS_STARTER_C, used)
                tail.append(compiled)
                words += w
            sources, cum, meta = _SECTION_TABLES[kind]
            counts: dict[str, int] = {}
            topics = [topic]
            body: list[tuple[int, int, Compiled]] = []
            while words < target or not body:
                source = sources[bisect.bisect(cum, rng.random() * cum[-1])]
                rank, cap = meta[source]
                taken = counts.get(source, 0)
                if taken >= cap:
                    source, rank = ("mod", 1) if kind == "mod" else ("topic", 2)
                counts[source] = taken + 1
                if source == "topic" and words > 90 and len(topics) < 3 and rng.random() < 0.12:
                    topics.append(TOPICS[int(rng.random() * len(TOPICS))])
                picked = self._from_pool(self._source_pool(source, topics, congrats), used)
                if picked is None:  # used up: drift to another topic, else tell a story
                    topics.append(TOPICS[int(rng.random() * len(TOPICS))])
                    picked = (self._from_pool(TOPIC_POOLS_C[topics[-1]], used)
                              or self._from_pool(NARRATIVE_C, used))
                    if picked is None:
                        break
                compiled, w = picked
                if body and ((target <= 30 and words + w > target + 6) or words + w > 305):
                    break
                if rank == 2 and body and rng.random() < 0.2:
                    compiled = with_connective(compiled, _pick(rng, CONNECTIVES))
                body.append((rank, len(body), compiled))
                words += w
            body.sort(key=lambda item: (item[0], item[1]))
            sentences = [compiled for _, _, compiled in body]
            for _ in range(n_ids):
                compiled, _w = self._id_sentence(used)
                sentences.insert(rng.randrange(len(sentences) + 1), compiled)
            if decoy:
                pool = THANKS_DECOYS_C if rng.random() < 0.35 else DECOYS_C
                sentences.insert(rng.randrange(len(sentences) + 1), self._any_from_pool(pool, used)[0])
        if kind == "mod":
            tail.append(_pick(rng, MOD_SIGNOFFS))
        elif n_ids and rng.random() < 0.12:
            tail.append(_pick(rng, SIGNOFF_NAME))

        # Layout: sentences flow with spaces; some posts break into lines or paragraphs.
        layout = rng.random()
        out: list[str] = []
        spans: list[tuple[int, int, str]] = []
        pos = 0
        noapos = rng.random() < 0.08
        emoji_rate = 0.12 if rng.random() < 0.3 else 0.0
        everything = lead + sentences
        para_every = rng.randrange(2, 5)
        for index, compiled in enumerate(everything):
            if index:
                if everything[index - 1] is OP_HANDLE_OPENER:
                    sep = " "
                elif layout < 0.22 and index % para_every == 0:
                    sep = "\n\n"
                elif layout > 0.93:
                    sep = "\n"
                else:
                    sep = " "
                out.append(sep)
                pos += len(sep)
            pos = self.render(compiled, ctx, out, spans, pos, noapos)
            if emoji_rate and rng.random() < emoji_rate:
                emoji = " " + _pick(rng, EMOJI)
                out.append(emoji)
                pos += len(emoji)
        for compiled in tail:
            sep = "\n\n" if (layout < 0.5 or compiled in MOD_SIGNOFFS or compiled in SIGNOFF_NAME) else " "
            if not out:
                sep = ""
            out.append(sep)
            pos += len(sep)
            pos = self.render(compiled, ctx, out, spans, pos, noapos)
        text = "".join(out)
        style = rng.random()
        if style < 0.06:
            lowered = text.lower()
            if len(lowered) == len(text):
                text = lowered
        if rng.random() < 0.3:
            text = text.replace("'", "’")  # same length: offsets still hold
        return text, spans


# --------------------------------------------------------------------------- population


class Population:
    """Users: persona, forums (home + maybe 1–2 more) and how much they post."""

    def __init__(self, n_users: int, rng: Random) -> None:
        self.n = n_users
        self.width = max(6, len(str(n_users)))
        f_cum = list(itertools.accumulate(FORUM_SHARES))
        n_forums = len(FORUMS)
        self.home = array("b")
        self.extra1 = array("b")
        self.extra2 = array("b")
        self.weight = array("d")
        # persona, packed: first name, surname, age, place, handle parts
        self.first = array("H")
        self.last = array("H")
        self.age = array("B")
        self.place = array("B")
        self.h_adj = array("B")
        self.h_noun = array("B")
        self.h_num = array("B")
        self.h_style = array("B")
        self.gender = array("B")
        rand = rng.random
        for _ in range(n_users):
            home = bisect.bisect(f_cum, rand() * f_cum[-1])
            home = min(home, n_forums - 1)
            self.home.append(home)
            roll = rand()
            e1 = e2 = -1
            if roll < 0.25:
                e1 = (home + 1 + int(rand() * (n_forums - 1))) % n_forums
                if roll < 0.07:
                    e2 = (home + 1 + int(rand() * (n_forums - 1))) % n_forums
                    if e2 == e1:
                        e2 = -1
            self.extra1.append(e1)
            self.extra2.append(e2)
            self.weight.append(min(rng.lognormvariate(0.0, 1.0), 30.0))
            self.first.append(int(rand() * len(FIRST_NAMES)))
            self.last.append(int(rand() * len(SURNAMES)))
            age_roll = rand()
            if age_roll < 0.12:
                age = 15 + int(rand() * 4)
            elif age_roll < 0.55:
                age = 19 + int(rand() * 10)
            elif age_roll < 0.85:
                age = 29 + int(rand() * 16)
            else:
                age = 45 + int(rand() * 25)
            self.age.append(age)
            self.place.append(bisect.bisect(_PLACE_CUM, rand() * _PLACE_CUM[-1]))
            self.h_adj.append(int(rand() * len(HANDLE_ADJ)))
            self.h_noun.append(int(rand() * len(HANDLE_NOUN)))
            self.h_num.append(1 + int(rand() * 99))
            self.h_style.append(int(rand() * 5))
            self.gender.append(int(rand() * 3))
        # Per forum: members and cumulative posting weights (secondary forums get less).
        self.members: list[array] = []
        self.cum: list[list[float]] = []
        for f in range(n_forums):
            members = array("i")
            weights: list[float] = []
            for u in range(n_users):
                if self.home[u] == f:
                    members.append(u)
                    weights.append(self.weight[u])
                elif self.extra1[u] == f or self.extra2[u] == f:
                    members.append(u)
                    weights.append(self.weight[u] * 0.35)
            if not members:  # tiny populations: anyone may post anywhere
                members = array("i", range(n_users))
                weights = list(self.weight)
            self.members.append(members)
            self.cum.append(list(itertools.accumulate(weights)))

    def user_id(self, u: int) -> str:
        return f"u{u + 1:0{self.width}d}"

    def forums_of(self, u: int) -> list[int]:
        return [f for f in (self.home[u], self.extra1[u], self.extra2[u]) if f >= 0]

    def handle(self, u: int) -> str:
        return _handle(self.h_adj[u], self.h_noun[u], self.h_num[u], self.h_style[u])

    def persona(self, u: int) -> Persona:
        return Persona(FIRST_NAMES[self.first[u]], SURNAMES[self.last[u]], self.age[u],
                       PLACES[self.place[u]], self.handle(u), ("girl", "lad", "person")[self.gender[u]]
                       if self.age[u] < 30 else ("woman", "man", "person")[self.gender[u]])

    def pick(self, rng: Random, forum: int) -> int:
        cum = self.cum[forum]
        return self.members[forum][bisect.bisect(cum, rng.random() * cum[-1])]


# --------------------------------------------------------------------------- consent


def _last_sunday(year: int, month: int) -> datetime:
    """Last Sunday of a month (March or October: when UK clocks change)."""
    last_day = datetime(year, month + 1, 1, tzinfo=UTC) - timedelta(days=1)
    return last_day - timedelta(days=(last_day.weekday() + 1) % 7)


def in_bst(ts: int) -> bool:
    """True when UK clocks were on British Summer Time at this instant."""
    year = time.gmtime(ts).tm_year
    start = _last_sunday(year, 3).replace(hour=1)
    end = _last_sunday(year, 10).replace(hour=1)
    return start.timestamp() <= ts < end.timestamp()


def _iso_z(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def format_consent_time(rng: Random, ts: int) -> str:
    """Mostly ``Z``; some with the UK offset of the day; some naive (= UTC)."""
    roll = rng.random()
    if roll < 0.78:
        return _iso_z(ts)
    if roll < 0.9:
        if in_bst(ts):
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts + 3600)) + "+01:00"
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + "+00:00"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


STATUS_SPELLINGS = {
    "opt_in": (("opt_in", 70), ("Opt-In", 10), ("OPT_IN", 8), ("opt-in", 8), ("Opt_In", 4)),
    "opt_out": (("opt_out", 65), ("OPT_OUT", 12), ("opt-out", 12), ("Opt-Out", 11)),
    "withdrawn": (("withdrawn", 75), ("Withdrawn", 18), ("WITHDRAWN", 7)),
}
_STATUS_TABLES = {k: _weighted(v) for k, v in STATUS_SPELLINGS.items()}
SOURCES = {
    "opt_in": (("signup_form", 60), ("settings_page", 30), ("email_reply", 10)),
    "opt_out": (("settings_page", 60), ("email_reply", 25), ("moderator", 15)),
    "withdrawn": (("email_reply", 45), ("settings_page", 35), ("moderator", 20)),
}
_SOURCE_TABLES = {k: _weighted(v) for k, v in SOURCES.items()}
_V2_FROM = int(datetime(2020, 9, 1, tzinfo=UTC).timestamp())
_V21_FROM = int(datetime(2023, 4, 1, tzinfo=UTC).timestamp())


def _notice(ts: int) -> str:
    if ts >= AS_OF_TS:
        return "v3"
    if ts >= _V21_FROM:
        return "v2.1"
    return "v2" if ts >= _V2_FROM else "v1"


class ConsentWriter:
    """Builds consent rows for one user at a time."""

    def __init__(self, rng: Random, pop: Population) -> None:
        self.rng = rng
        self.pop = pop
        self.rows: list[tuple[str, ...]] = []

    def _uid(self, u: int) -> str:
        uid = self.pop.user_id(u)
        roll = self.rng.random()
        if roll < 0.015:
            return f" {uid} "
        if roll < 0.025:
            return f"{uid} "
        if roll < 0.03:
            return f"  {uid}"
        return uid

    def _all_forums(self) -> str:
        return "" if self.rng.random() < 0.5 else "*"

    def _forum(self, f: int) -> str:
        name = FORUMS[f]
        return name.lower() if self.rng.random() < 0.1 else name

    def add(self, u: int, status: str, ts: int, forum: str | None = None, expires: int | None = None,
            stamp: str | None = None) -> None:
        rng = self.rng
        self.rows.append((
            self._uid(u),
            _choose_weighted(rng, _STATUS_TABLES[status]),
            stamp or format_consent_time(rng, ts),
            self._all_forums() if forum is None else forum,
            "" if expires is None else _iso_z(expires),
            _notice(ts),
            _choose_weighted(rng, _SOURCE_TABLES[status]),
        ))

    def times(self, k: int, start: int = CONSENT_START, end: int = CONSENT_END) -> list[int]:
        return sorted(self.rng.randrange(start, end) for _ in range(k))

    def other_forum(self, u: int) -> int:
        forums = self.pop.forums_of(u)
        if len(forums) > 1:
            return forums[1 + int(self.rng.random() * (len(forums) - 1))]
        home = forums[0]
        return (home + 1 + int(self.rng.random() * (len(FORUMS) - 1))) % len(FORUMS)

    def history(self, u: int, category: str) -> None:
        rng = self.rng
        if category == "no_record":
            return
        if category == "opt_in_all":
            t1, t2 = self.times(2)
            self.add(u, "opt_in", t1)
            if rng.random() < 0.15:  # re-consent under a newer notice
                self.add(u, "opt_in", t2)
        elif category == "opt_out":
            t1, t2 = self.times(2)
            if rng.random() < 0.3:
                self.add(u, "opt_in", t1)
            self.add(u, "opt_out", t2)
        elif category == "withdrawn":
            t1, t2 = self.times(2)
            self.add(u, "opt_in", t1)
            self.add(u, "withdrawn", t2)
        elif category == "reopt_in":
            t1, t2, t3 = self.times(3)
            self.add(u, "opt_in", t1)
            self.add(u, "withdrawn", t2)
            self.add(u, "opt_in", t3)
        elif category == "forum_specific":
            home = self.pop.home[u]
            other = self.other_forum(u)
            t1, t2 = self.times(2)
            kind = rng.random()
            if kind < 0.3:  # opted in for one forum only
                self.add(u, "opt_in", t1, self._forum(home))
            elif kind < 0.6:  # in for one, out for another
                self.add(u, "opt_in", t1, self._forum(home))
                self.add(u, "opt_out", t2, self._forum(other))
            elif kind < 0.85:  # in everywhere, later out of one forum
                self.add(u, "opt_in", t1)
                self.add(u, "opt_out", t2, self._forum(home if rng.random() < 0.5 else other))
            else:  # out everywhere, later in for one forum
                self.add(u, "opt_out", t1)
                self.add(u, "opt_in", t2, self._forum(home))
        elif category == "expiry":
            if rng.random() < 0.5:  # expired before the as-of date
                t1 = rng.randrange(CONSENT_START, int(datetime(2022, 6, 1, tzinfo=UTC).timestamp()))
                expires = min(t1 + rng.randrange(YEAR, 2 * YEAR), AS_OF_TS - DAY)
            else:  # still valid at the as-of date
                t1 = rng.randrange(int(datetime(2022, 1, 1, tzinfo=UTC).timestamp()), CONSENT_END)
                expires = max(t1 + rng.randrange(YEAR, 3 * YEAR), AS_OF_TS + 60 * DAY)
            expires -= expires % 3600
            self.add(u, "opt_in", t1, expires=expires)
        elif category == "not_yet":
            times = self.times(1 if rng.random() < 0.8 else 2, LATE_START, LATE_END)
            for i, t in enumerate(times):
                self.add(u, "opt_in" if (i == 0 and rng.random() < 0.8) else "opt_out", t)
        elif category == "conflict":
            t1, t2 = self.times(2)
            if rng.random() < 0.4:
                self.add(u, "opt_in", t1)
            forum = self._all_forums()
            first = _iso_z(t2)
            second = first if rng.random() < 0.6 else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t2))
            pair = [("opt_in", first), ("opt_out", second)]
            if rng.random() < 0.5:
                pair.reverse()
            for status, stamp in pair:
                self.add(u, status, t2, forum, stamp=stamp)
        elif category == "late_change":
            t1 = self.times(1)[0]
            t2 = rng.randrange(LATE_START, LATE_END)
            if rng.random() < 0.6:  # in at the as-of date, left afterwards
                self.add(u, "opt_in", t1)
                self.add(u, "withdrawn" if rng.random() < 0.5 else "opt_out", t2)
            else:  # out at the as-of date, joined afterwards
                self.add(u, "opt_out", t1)
                self.add(u, "opt_in", t2)
        else:  # pragma: no cover - CONSENT_MIX and this method are kept in step
            raise ValueError(category)


def consent_categories(n_users: int, rng: Random) -> list[str]:
    """One history category per user, by quota (small categories get at least 3 users)."""
    counts = {}
    for name, share in CONSENT_MIX:
        counts[name] = int(n_users * share)
        if n_users >= 50:
            counts[name] = max(counts[name], 3)
    total = sum(counts.values())
    counts["opt_in_all"] += n_users - total
    if counts["opt_in_all"] < 0:  # very small populations: trim the others
        counts["opt_in_all"] = 0
    categories = [name for name, _ in CONSENT_MIX for _ in range(counts[name])][:n_users]
    while len(categories) < n_users:
        categories.append("opt_in_all")
    rng.shuffle(categories)
    return categories


def make_consent(pop: Population, rng: Random) -> tuple[list[tuple[str, ...]], list[str]]:
    """Consent rows (shuffled) and each user's history category."""
    categories = consent_categories(pop.n, rng)
    writer = ConsentWriter(rng, pop)
    for u, category in enumerate(categories):
        writer.history(u, category)
    rows = writer.rows
    rng.shuffle(rows)
    return rows, categories


# --------------------------------------------------------------------------- posts

STARTER_KINDS = (("vent", 25), ("question", 21), ("checkin", 12), ("goodnews", 11), ("badday", 18),
                 ("intro", 13))
REPLY_KINDS = (("advice", 26), ("support", 27), ("experience", 27), ("askback", 8), ("vent", 5),
               ("checkin", 3), ("goodnews", 2), ("mod", 2))
OP_KINDS = (("update", 50), ("experience", 15), ("checkin", 10), ("vent", 15), ("askback", 10))
_STARTER_T = _weighted(STARTER_KINDS)
_REPLY_T = _weighted(REPLY_KINDS)
_OP_T = _weighted(OP_KINDS)
# Posting activity by hour (UTC-ish): quiet mornings, busy late evenings.
HOUR_WEIGHTS = (4, 3, 2, 1.5, 1, 0.7, 0.7, 1, 1.5, 2, 2.5, 2.5, 2.6, 2.6, 2.5, 2.5, 2.6, 3, 3.5, 4.2,
                4.8, 5.3, 5.5, 5)
_HOUR_CUM = list(itertools.accumulate(HOUR_WEIGHTS))


def _thread_lengths(n_posts: int, rng: Random) -> array:
    lengths = array("H")
    remaining = n_posts
    while remaining > 0:
        roll = rng.random()
        if roll < 0.14:
            replies = 0
        elif roll < 0.9:
            replies = 1 + min(int(rng.expovariate(1 / 3.5)), 25)
        else:
            replies = 5 + min(int(rng.expovariate(1 / 8)), 60)
        size = min(1 + replies, remaining)
        lengths.append(size)
        remaining -= size
    return lengths


def _thread_forums(lengths: array, rng: Random) -> array:
    """Forum per thread: mostly random by share, nudged towards the target sizes."""
    forums = array("B")
    counts = [0] * len(FORUMS)
    total = 0
    cum = list(itertools.accumulate(FORUM_SHARES))
    for size in lengths:
        if rng.random() < 0.6:
            f = min(bisect.bisect(cum, rng.random() * cum[-1]), len(FORUMS) - 1)
        else:
            f = max(range(len(FORUMS)), key=lambda i: FORUM_SHARES[i] * (total + size) - counts[i])
        forums.append(f)
        counts[f] += size
        total += size
    return forums


def _thread_starts(n: int, rng: Random) -> array:
    """Sorted start times: the forum grows over time; evenings are busiest."""
    span_days = (POSTS_END - POSTS_START) // DAY - 4
    starts = array("q")
    for _ in range(n):
        day = int((rng.random() ** 0.8) * span_days)
        hour = bisect.bisect(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
        starts.append(POSTS_START + day * DAY + min(hour, 23) * 3600 + rng.randrange(3600))
    return array("q", sorted(starts))


class PostStream:
    """Yields posts in time order as (post_id, forum, user_id, thread_id, text, created_at, spans)."""

    def __init__(self, n_posts: int, pop: Population, seed: int) -> None:
        self.n_posts = n_posts
        self.pop = pop
        rng = Random(f"{seed}:threads")
        self.lengths = _thread_lengths(n_posts, rng)
        self.forums = _thread_forums(self.lengths, rng)
        self.starts = _thread_starts(len(self.lengths), rng)
        k = max(3, round(n_posts * INVALID_SHARE)) if n_posts >= 300 else round(n_posts * INVALID_SHARE)
        self.invalid = frozenset(Random(f"{seed}:invalid").sample(range(n_posts), min(k, n_posts)))
        self.rng = Random(f"{seed}:text")
        self.maker = TextMaker(self.rng)
        self.post_width = max(7, len(str(n_posts)))
        self.thread_width = max(6, len(str(len(self.lengths))))
        self.thanks_posts = 0
        self.id_posts = 0
        self.users_posted = bytearray(pop.n)

    def _target(self, thanks: bool, reply: bool, kind: str) -> int:
        """Words to aim for: long-tailed (median ~50); thank-you posts ~60% over 30 words."""
        rng = self.rng
        if thanks:
            if rng.random() < 0.5:
                return min(300, 32 + int(rng.lognormvariate(math.log(28), 0.8)))
            return (3 if reply else 10) + int(rng.random() * 20)
        if kind == "mod":
            return 8 + int(rng.random() * 40)
        if reply:
            if rng.random() < 0.1:
                return 3 + int(rng.random() * 6)
            return max(10, min(300, int(rng.lognormvariate(math.log(44), 0.7))))
        return max(12, min(300, int(rng.lognormvariate(math.log(85), 0.7))))

    def _post(self, author_no: int, op: int, topic: str, kind: str, thread_kind: str, reply: bool,
              thanks_p: float, year: int) -> tuple[str, list]:
        rng = self.rng
        pop = self.pop
        author = pop.persona(author_no)
        place = author.place if rng.random() < 0.75 else _random_place(rng)
        ctx = PostContext(author, pop.handle(op), place, year)
        thanks = rng.random() < thanks_p
        target = self._target(thanks, reply, kind)
        roll = rng.random()
        n_ids = 0 if roll >= 0.27 else (1 if roll < 0.195 else (2 if roll < 0.255 else 3))
        decoy = rng.random() < 0.14
        return self.maker.make(ctx, kind, topic, reply=reply, thread_kind=thread_kind, target=target,
                               thanks=thanks, n_ids=n_ids, decoy=decoy)

    def __iter__(self) -> Iterator[tuple]:
        rng = self.rng
        pop = self.pop
        heap: list[tuple] = []
        seq = 0
        emitted = 0
        for thread_no, (size, forum, start) in enumerate(zip(self.lengths, self.forums, self.starts)):
            while heap and heap[0][0] <= start:
                yield self._emit(heapq.heappop(heap), emitted)
                emitted += 1
            thread_id = f"t{thread_no + 1:0{self.thread_width}d}"
            topic = TOPICS[bisect.bisect(_TOPIC_CUM, rng.random() * _TOPIC_CUM[-1])]
            op = pop.pick(rng, forum)
            year = time.gmtime(start).tm_year
            thread_kind = _choose_weighted(rng, _STARTER_T)
            ts = start
            for i in range(size):
                if i == 0:
                    author, kind, reply, thanks_p = op, thread_kind, False, 0.10
                else:
                    gap = rng.expovariate(1 / 5400) if rng.random() < 0.8 else rng.expovariate(1 / DAY)
                    ts += 30 + int(gap)
                    if ts > POSTS_END:  # the export ends here: squeeze late replies into the last hours
                        ts = POSTS_END - rng.randrange(6 * 3600)
                    if i > 1 and rng.random() < 0.17:
                        author, kind, reply, thanks_p = op, _choose_weighted(rng, _OP_T), True, 0.55
                    else:
                        author = pop.pick(rng, forum)
                        if author == op:
                            author = pop.pick(rng, forum)
                        kind, reply, thanks_p = _choose_weighted(rng, _REPLY_T), True, 0.20
                post_topic = topic if rng.random() < 0.75 else TOPICS[int(rng.random() * len(TOPICS))]
                text, spans = self._post(author, op, post_topic, kind, thread_kind, reply, thanks_p, year)
                heapq.heappush(heap, (ts, seq, forum, author, thread_id, text, spans))
                seq += 1
        while heap:
            yield self._emit(heapq.heappop(heap), emitted)
            emitted += 1

    def _emit(self, item: tuple, index: int) -> tuple:
        ts, _seq, forum, author, thread_id, text, spans = item
        post_id = f"p{index + 1:0{self.post_width}d}"
        if index in self.invalid:
            user_id = None
        else:
            user_id = self.pop.user_id(author)
            self.users_posted[author] = 1
        if THANK_YOU_FOR.search(text):
            self.thanks_posts += 1
        if spans:
            self.id_posts += 1
        return post_id, FORUMS[forum], user_id, thread_id, text, _iso_z(ts), spans


# --------------------------------------------------------------------------- writing


class AtomicFiles:
    """Temp files next to their targets; all replace the targets together on commit."""

    def __init__(self) -> None:
        self.pairs: list[tuple[Path, Path]] = []

    def temp_for(self, target: Path) -> Path:
        for attempt in itertools.count():
            temp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{attempt}")
            try:
                fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            self.pairs.append((temp, target))
            return temp
        raise AssertionError("unreachable")

    def commit(self) -> None:
        for temp, target in self.pairs:
            os.replace(temp, target)
        self.pairs = []

    def discard(self) -> None:
        for temp, _ in self.pairs:
            try:
                temp.unlink()
            except FileNotFoundError:
                pass
        self.pairs = []


class PostsWriter:
    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        self.path = path
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._pa = pa
            self.schema = pa.schema([(c, pa.string()) for c in POST_COLUMNS])
            self.writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")
            self.handle = None
        else:
            self.handle = open(path, "w", encoding="utf-8", newline="")
            if fmt == "csv":
                self.csv = csv.writer(self.handle, lineterminator="\n")
                self.csv.writerow(POST_COLUMNS)

    def write(self, rows: list[tuple]) -> None:
        if self.fmt == "csv":
            self.csv.writerows((p, f, "" if u is None else u, t, x, c) for p, f, u, t, x, c in rows)
        elif self.fmt == "jsonl":
            dumps = json.dumps
            self.handle.write("".join(
                dumps(dict(zip(POST_COLUMNS, row)), ensure_ascii=False) + "\n" for row in rows
            ))
        else:
            pa = self._pa
            columns = list(zip(*rows)) if rows else [()] * len(POST_COLUMNS)
            table = pa.Table.from_arrays([pa.array(list(col), pa.string()) for col in columns],
                                         schema=self.schema)
            self.writer.write_table(table)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        else:
            self.writer.close()


class OutputExists(FileExistsError):
    """Output files are already there and ``force`` was not given."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(f"refusing to overwrite {', '.join(str(p) for p in paths)}; pass --force to replace")
        self.paths = paths


def output_paths(out: Path, fmt: str) -> dict[str, Path]:
    return {"posts": out / f"posts.{fmt}", "consent": out / "consent.csv",
            "identifiers": out / "identifiers.jsonl"}


def default_users(n_posts: int) -> int:
    return max(50, n_posts // 6)


def generate(n_posts: int, seed: int, out: Path | str, fmt: str = "csv", n_users: int | None = None,
             force: bool = False) -> dict[str, Any]:
    """Write the corpus; returns counts and paths. Raises OutputExists unless ``force``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if n_posts < 1:
        raise ValueError("--posts must be at least 1")
    n_users = default_users(n_posts) if n_users is None else n_users
    if n_users < 1:
        raise ValueError("--users must be at least 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    paths = output_paths(out, fmt)
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise OutputExists(existing)
    out.mkdir(parents=True, exist_ok=True)

    pop = Population(n_users, Random(f"{seed}:users"))
    consent_rows, categories = make_consent(pop, Random(f"{seed}:consent"))
    stream = PostStream(n_posts, pop, seed)

    files = AtomicFiles()
    try:
        posts_tmp = files.temp_for(paths["posts"])
        ids_tmp = files.temp_for(paths["identifiers"])
        consent_tmp = files.temp_for(paths["consent"])
        with open(consent_tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CONSENT_COLUMNS)
            writer.writerows(consent_rows)
        posts_writer = PostsWriter(posts_tmp, fmt)
        try:
            with open(ids_tmp, "w", encoding="utf-8", newline="\n") as ids:
                chunk: list[tuple] = []
                lines: list[str] = []
                for post_id, forum, user_id, thread_id, text, created_at, spans in stream:
                    chunk.append((post_id, forum, user_id, thread_id, text, created_at))
                    if spans:
                        lines.append(json.dumps({"post_id": post_id, "spans": [
                            {"start": s, "end": e, "entity_type": t, "text": text[s:e]} for s, e, t in spans
                        ]}, ensure_ascii=False) + "\n")
                    if len(chunk) >= CHUNK_POSTS:
                        posts_writer.write(chunk)
                        ids.write("".join(lines))
                        chunk, lines = [], []
                if chunk:
                    posts_writer.write(chunk)
                ids.write("".join(lines))
        finally:
            posts_writer.close()
        files.commit()
    except BaseException:
        files.discard()
        raise
    return {
        "posts": n_posts,
        "users": n_users,
        "users_posted": sum(stream.users_posted),
        "invalid_posts": len(stream.invalid),
        "thanks_posts": stream.thanks_posts,
        "identifier_posts": stream.id_posts,
        "consent_records": len(consent_rows),
        "users_with_consent": sum(1 for c in categories if c != "no_record"),
        "paths": {k: str(v) for k, v in paths.items()},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate a synthetic peer-support forum corpus "
                    "(posts, consent records, identifier spans).")
    parser.add_argument("--posts", type=int, required=True, help="number of posts to write")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same seed → same files)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="posts file format (default: csv)")
    parser.add_argument("--users", type=int, default=None,
                        help="number of users (default: posts/6, at least 50)")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prog = "make_demo_corpus"
    try:
        summary = generate(args.posts, args.seed, args.out, args.format, args.users, args.force)
    except (OutputExists, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    p = summary["paths"]
    print(f"wrote {summary['posts']:,} post{'s' if summary['posts'] != 1 else ''} "
          f"by {summary['users_posted']:,} of {summary['users']:,} users "
          f"({summary['invalid_posts']} without user_id), {summary['consent_records']:,} consent records "
          f"for {summary['users_with_consent']:,} users: {p['posts']}, {p['consent']}, {p['identifiers']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
