"""Template families for the research dataset's train and dev splits.

Why templates at all: the hand-written pool (``research_pool.jsonl``) carries realism, and these
slot lists add breadth (many entities, tickers, teams, cities, languages) so the encoder learns the
*kind* of request rather than a handful of nouns. The test split never uses these families: it is
hand-written separately (``research_test.jsonl``), so the test score measures generalisation.

Each family is ``(category, [templates])``; ``{slot}`` names index ``SLOTS``. ``needs_research`` follows
from the category (the research categories are true, the rest false), as the classifier's contract says.
"""

from __future__ import annotations

import random
import re

from penny_slm.results import RESEARCH_CATEGORIES

SLOTS: dict[str, list[str]] = {
    "person": ["taylor swift", "elon musk", "beyonce", "tom hanks", "oprah", "keanu reeves", "rihanna", "bill gates",
               "lionel messi", "serena williams", "barack obama", "jeff bezos", "adele", "ryan gosling", "zendaya"],
    "country": ["germany", "japan", "brazil", "canada", "kenya", "india", "mexico", "norway", "egypt", "peru", "vietnam"],
    "state": ["texas", "ohio", "california", "new york", "florida", "georgia", "michigan", "oregon", "arizona"],
    "doc": ["linkedin post", "product description", "tweet", "toast", "wedding speech", "slogan", "bio for my website",
            "birthday message", "instagram caption", "short story"],
    # functional writing is general, not creative (docs/DATA.md, category definitions)
    "letter": ["cover letter", "email to my landlord", "complaint letter to my internet provider", "meeting invite",
               "out-of-office reply", "job description for a part-time barista", "reference letter for my intern",
               "resignation letter"],
    "chunk": ["the meeting moved to thursday because the room was booked", "our sales grew 4% while costs fell",
              "i has went to the store yesterday and buyed milk", "the new policy starts on the first of the month",
              "customers complained that the app logs them out too often", "the soup was cold but the staff were lovely"],
    "film": ["jaws", "the godfather", "titanic", "the matrix", "spirited away", "casablanca", "pulp fiction",
             "alien", "toy story", "the shining", "amelie", "goodfellas"],
    "coin": ["bitcoin", "ethereum", "solana", "dogecoin", "cardano", "xrp", "litecoin", "btc", "eth"],
    "stock": ["apple", "tesla", "nvidia", "amazon", "microsoft", "meta", "netflix", "AMD", "intel",
              "disney", "coca cola", "boeing", "shopify", "palantir", "TSLA", "AAPL", "NVDA"],
    "currency": ["euro", "yen", "pound", "peso", "rupee", "won", "swiss franc", "canadian dollar", "aud"],
    "commodity": ["gold", "silver", "oil", "copper", "natural gas", "wheat", "coffee beans", "lumber"],
    "product": ["iphone 16", "ps5", "xbox", "steam deck", "macbook air", "pixel phone", "airpods",
                "nintendo switch", "galaxy s24", "rtx 4090", "kindle", "apple watch"],
    "index": ["s&p 500", "dow", "nasdaq", "ftse", "nikkei", "dax", "russell 2000"],
    "team": ["lakers", "celtics", "yankees", "dodgers", "arsenal", "man united", "real madrid",
             "barcelona", "chiefs", "eagles", "packers", "warriors", "bayern", "liverpool", "cubs",
             "knicks", "juventus", "psg", "maple leafs", "red sox"],
    "athlete": ["lebron", "messi", "ronaldo", "mbappe", "curry", "mahomes", "djokovic", "alcaraz",
                "ohtani", "verstappen", "hamilton", "simone biles", "sabalenka", "wembanyama"],
    "league": ["premier league", "nba", "nfl", "la liga", "serie a", "mlb", "nhl", "f1", "mls", "bundesliga"],
    "city": ["seattle", "london", "tokyo", "chicago", "berlin", "austin", "paris", "sydney", "toronto",
             "denver", "miami", "mumbai", "boston", "dublin", "oslo", "phoenix", "nyc", "la"],
    "when": ["today", "tonight", "tomorrow", "this weekend", "right now", "this afternoon", "on friday",
             "this week", "rn", "later today"],
    "topic": ["the election", "the strike", "the wildfires", "the trade deal", "the ceasefire talks",
              "the tech layoffs", "the bank merger", "the court ruling", "the flooding", "the recall",
              "the protests", "the space launch", "the antitrust case", "the budget vote", "the outage"],
    "org": ["apple", "google", "the un", "nasa", "the fed", "the eu", "openai", "microsoft", "the who",
            "congress", "the supreme court", "spacex", "amazon", "the ecb"],
    "claim": ["the store on main st closed for good", "the speed limit on the highway changed",
              "the museum is free on tuesdays now", "they banned plastic bags in my state",
              "the festival got cancelled", "the bridge reopened", "the new tax credit passed",
              "netflix raised prices again", "the airline dropped its bag fee",
              "the library extended its hours", "that singer announced a retirement",
              "the school district switched to a 4 day week"],
    "lib": ["python", "pandas", "numpy", "react", "django", "node", "rust", "typescript", "kubernetes",
            "postgres", "pytorch", "flask", "vue", "go", "java", "swift", "tailwind", "next.js"],
    "lang": ["python", "javascript", "rust", "go", "java", "c++", "typescript", "ruby", "c#", "kotlin", "bash"],
    "task": ["reverses a string", "checks if a number is prime", "merges two sorted lists",
             "removes duplicates from a list", "counts word frequencies in a file",
             "validates a phone number", "flattens a nested list", "finds the max in an array",
             "converts celsius to fahrenheit", "parses a date string", "returns today's date",
             "gets the current timestamp", "calculates the total price of a cart",
             "fetches the latest row from a table", "formats a price with two decimals",
             "computes a moving average of stock prices", "reads the current user's name from env"],
    "error": ["KeyError", "IndexError: list index out of range", "undefined is not a function",
              "segfault", "null pointer exception", "CORS error", "ModuleNotFoundError",
              "borrow checker error", "merge conflict", "stack overflow", "deadlock", "404 on my api route"],
    "concept": ["recursion", "closures", "pointers", "big o notation", "memoization", "generators",
                "the event loop", "garbage collection", "polymorphism", "mutexes", "monads", "hash tables"],
    "science": ["photosynthesis", "gravity", "evolution", "plate tectonics", "the greenhouse effect",
                "black holes", "dna replication", "quantum tunneling", "the water cycle", "inflation",
                "supply and demand", "compound interest", "the french revolution", "vaccines",
                "how the stock market works", "what a bond yield is", "how tides work", "the cold war",
                "electric circuits", "the placebo effect", "opportunity cost", "keynesian economics"],
    "n": ["12", "37", "144", "250", "1,200", "7", "64", "18", "3.5", "99", "420", "15"],
    "pct": ["10%", "15%", "20%", "25%", "7.5%", "30%", "12%", "40%"],
    "money": ["$40", "$120", "$19.99", "$2,500", "$75", "€60", "£30", "$8"],
    "poem": ["haiku", "poem", "limerick", "sonnet", "short story", "song", "rap verse", "toast",
             "bedtime story", "fable"],
    "subject": ["the moon", "my cat", "rainy mondays", "a lonely robot", "the ocean", "coffee shops",
                "autumn leaves", "a brave mouse", "my best friend", "space travel", "a haunted house"],
    "feeling": ["stressed", "anxious", "sad", "lonely", "excited", "burnt out", "overwhelmed",
                "happy", "nervous", "frustrated", "tired"],
    "life": ["my job", "my relationship", "school", "my family", "my new apartment", "my health",
             "my sleep", "my finances", "moving cities", "my thesis"],
    "day": ["rough", "long", "weird", "great", "exhausting", "awful", "surprisingly good", "chaotic"],
    "event": ["my cat got sick", "i failed my driving test", "my friend moved away", "i got rejected",
              "my code finally worked", "i had a panic attack", "my boss yelled at me", "i ran my first 5k",
              "our dog passed away", "i finished my thesis draft", "i cried at work"],
    "greeting": ["good morning", "morning penny", "good night", "happy friday", "hey, i'm back",
                 "hello again", "evening!", "happy monday i guess", "gm", "night night"],
    "chore": ["clean a microwave", "boil rice", "iron a shirt", "unclog a drain", "get rid of fruit flies",
              "meal prep for a week", "fix a squeaky door", "remove a coffee stain", "tie a tie",
              "change a bike tire", "keep basil alive"],
}

FAMILIES: list[tuple[str, list[str]]] = [
    ("current_events", [
        "what's the latest on {topic}", "any news about {topic} {when}", "what happened with {topic}",
        "did {org} announce anything {when}", "update me on {topic}", "is {topic} still going on",
        "what did {org} say about {topic}", "whats new with {org} this week", "news today about {org}",
        "has {topic} been resolved yet", "give me the headlines on {topic}",
        "what's {org} up to lately", "is there any update on {topic} {when}",
    ]),
    ("prices_markets", [
        "{coin} price {when}", "how much is {coin} worth {when}", "what's {stock} stock at {when}",
        "is {stock} up or down {when}", "{currency} to dollar exchange rate {when}",
        "price of {commodity} {when}", "how much does a {product} cost right now",
        "how is the {index} doing {when}", "did the {index} close higher {when}",
        "current price of {stock} shares", "what's the going price for a {product} these days",
        "is {coin} crashing {when}", "how much is a {product} on sale this week",
    ]),
    ("sports", [
        "did the {team} win {when}", "score of the {team} game {when}", "when do the {team} play next",
        "is {athlete} playing {when}", "{league} standings right now", "who won the {team} match last night",
        "any injury news on {athlete}", "how did {athlete} do {when}", "{league} results {when}",
        "latest {league} transfer news", "who's leading the {league} this season",
    ]),
    # settled sports knowledge: a rule is a concept, a past fact is general (sports means a live result)
    ("concept_explanation", [
        "how does scoring work in the {league}", "explain the rules of the {league} playoffs format",
        "how long is a game in the {league}",
    ]),
    ("general", [
        "who is the greatest {league} player of all time historically",
        "what position did {athlete} start their career in, historically",
    ]),
    ("weather", [
        "weather in {city} {when}", "will it rain in {city} {when}", "how hot is it in {city} {when}",
        "is it snowing in {city} {when}", "forecast for {city} {when}", "do i need a coat in {city} {when}",
        "any storms in {city} {when}", "what's the temperature in {city} {when}",
    ]),
    ("general", [  # climate is established knowledge; weather means a forecast or conditions now
        "what's the weather usually like in {city} in winter", "what's the average rainfall in {city} per year",
        "what is the best season to visit {city}, weather wise", "is {city} humid in summer generally",
    ]),
    ("verification", [
        "can you check if {claim}", "is it true that {claim}", "verify that {claim}",
        "fact check: {claim}", "look up whether {claim}", "someone told me {claim}, confirm?",
        "double-check online that {claim}", "i read that {claim}, is that real",
    ]),
    # checking the user's own work needs no search: it is math, coding or general, not verification
    ("math", ["double check my answer: {n} plus {n} is 50"]),
    ("coding", ["can you verify my {lang} code compiles, it's just a print"]),
    ("general", ["check my spelling in this sentence: i recieved the package", "check my reasoning on this logic puzzle"]),
    ("coding", [
        "write a {lang} function that {task}", "how do i write code that {task} in {lang}",
        "explain {concept} in {lang}", "why am i getting {error} in {lang}", "fix my {lang} code, {error}",
        "what's the idiomatic way to do {concept} in {lang}", "{lang} snippet that {task}",
        "help me debug a {error}", "can you give me a {lang} example of {concept}",
        "how do i install {lib} locally", "show me how to use {lib} to read a csv",
        "explain how {lib} handles state", "what is {concept}",
    ]),
    ("current_events", [  # software news: the latest release is live information
        "what's the latest version of {lib}", "is {lib} deprecated now", "did a new {lib} release come out {when}",
        "what changed in the newest {lib} release", "is the {lib} docs site down right now",
        "current stable release of {lib}?", "has {lib} announced end of life for the old version yet",
    ]),
    ("math", [
        "what's {pct} of {n}", "what is {n} times {n}", "{money} minus {pct} discount, what's the final price",
        "solve {n}x + {n} = 100", "what's the square root of {n}", "how much is {pct} tip on {money}",
        "convert {n} miles to kilometers", "if the price of a {product} is {money}, how much for {n} of them",
        "what's {n} divided by {n}", "compound {money} at {pct} for {n} years", "is {n} a prime number",
        "what's the derivative of x^{n}", "average of {n}, {n} and {n}",
    ]),
    ("concept_explanation", [
        "explain {science}", "how does {science} work", "what is {science} in simple terms",
        "eli5 {science}", "why does {science} matter", "can you teach me about {science}",
        "give me a quick overview of {science}", "what's the history behind {science}",
    ]),
    ("creative", [
        "write a {poem} about {subject}", "give me a {poem} about {subject}", "make up a {poem} on {subject}",
        "write me a funny {poem} about {subject}", "i need a {poem} for my friend about {subject}",
        "brainstorm names for a podcast about {subject}", "write a {poem} about {subject} {when}",
    ]),
    ("personal", [
        "i'm feeling {feeling} about {life}", "i've been so {feeling} {when}", "feeling {feeling} lol",
        "can we talk about {life}", "i need advice about {life}", "i'm {feeling}, {life} is a lot",
        "why do i always feel {feeling} about {life}", "remember that {life} has been tough",
        "{when} was {day}", "ugh, {when} has been {day}", "{event} yesterday", "{event} this week",
        "so {event} today", "i had a {day} day today", "today {event}", "this morning {event}",
    ]),
    ("personal", [  # greetings and chit-chat are personal, like questions to Penny about herself
        "{greeting}", "{greeting}!", "{greeting}, how are you today", "{greeting} :)", "{greeting}, what's up",
    ]),
    ("general", [
        "how do i {chore}", "best way to {chore}?", "any tips to {chore}", "quick question, how to {chore}",
        "what's a good movie about {subject}", "recommend a book about {subject}",
        "what should i get my friend who likes {subject}",
    ]),
    ("current_events", [  # opening hours and what is on: a live look-up
        "is the dmv in {city} open {when}", "what restaurants in {city} are open {when}",
        "what events are on in {city} {when}", "are the museums in {city} open {when}",
    ]),
    # the failure classes real queries showed (issue 25): conversions at today's rate, explicit look-ups,
    # counts and rankings that change, questions to the assistant about itself, settled trivia and film
    ("prices_markets", [
        "convert {n} {currency} to dollars", "how many {currency} is {money}", "{n} usd in {currency}",
        "what's {money} in {currency} right now", "exchange {n} dollars to {currency}", "{currency} to usd rate",
    ]),
    ("current_events", [
        "look up {topic} for me", "search the web for {topic}", "google the latest on {topic}",
        "can you find out what happened with {topic}", "search online: {org} announcement", "look up {org}'s latest news",
        "how many people live in {city} now", "what's the population of {city} these days",
        "who is the richest person in the world right now", "what's the most watched show on netflix this week",
        "top selling {product} alternatives this year", "who is the current ceo of {org}",
    ]),
    ("personal", [
        "what model are you", "are you an ai", "can you remember what i told you yesterday", "what can you do",
        "do you have feelings", "how do you work, penny", "what should i call you", "are you better than chatgpt",
    ]),
    ("general", [  # tasks on text the user gives, and questions whose answers do not change
        "rewrite this so it sounds more professional: {chunk}", "summarize this in one line: {chunk}",
        "translate into spanish: {chunk}", "fix the grammar: {chunk}", "is this review positive or negative? {chunk}",
        "make this shorter: {chunk}", "extract the date from this: {chunk}", "turn this into bullet points: {chunk}",
        "come up with interview questions for a {lib} developer", "give me questions to ask about {science}",
        "what currency does {country} use", "what language do they speak in {country}", "what time zone is {city} in",
        "where was {person} born", "what is the capital of {country}", "things to do in {city}",
        "what to see in {city} on a first visit", "what is {city} famous for", "what's the zip code for downtown {city}",
    ]),
    ("general", [  # a bare topic, as typed into a search box: nothing live asked for
        "{subject}", "{film}", "{person}", "{city} travel guide", "{country} history", "{lib} tutorial",
        "{chore}", "{film} cast",
    ]),
    ("concept_explanation", ["{science}"]),  # a bare concept or field (docs/DATA.md, category definitions)
    ("coding", ["{concept}"]),  # a bare programming concept is coding, as "what is {concept}" is
    ("general", [  # functional writing: letters, emails, job descriptions
        "write a {letter}", "draft a {letter} for me", "help me write a {letter}", "can you write a {letter}",
    ]),
    ("creative", [
        "write a {doc} about {subject}", "draft a {doc} for me", "help me write a {doc}",
        "write a {doc} announcing my new job", "brainstorm ideas for a {doc}", "give me a catchy title for a post about {subject}",
    ]),
    ("current_events", [  # affiliations, office holders and relationships change: a live question
        "who is {person} married to", "is {person} dating anyone", "where does {person} live now",
        "how many kids does {person} have", "who are the senators of {state}", "who is the governor of {state}",
        "who is the prime minister of {country}", "who leads {country} right now", "who owns {org} these days",
    ]),
    ("sports", [
        "what team does {athlete} play for", "who coaches the {team}", "who is the {team} quarterback",
        "what years have the {team} won the title", "when was the last time the {team} made the playoffs",
        "how many titles have the {team} won", "who is the top scorer in the {league} right now",
    ]),
    ("general", [
        "who directed {film}", "when did {film} come out", "who played the lead in {film}",
        "what is {film} about", "when was the eiffel tower built", "who wrote pride and prejudice",
        "what's the capital of australia", "how tall is mount everest", "who painted the mona lisa",
        "what year did the berlin wall fall",
    ]),
]

# Neutral chat around a request: it must not change the label, and it teaches the encoder that the
# request can sit anywhere in a long, multi-sentence message.
CONTEXT = [
    "sorry if this is a dumb question.", "ok so long story short, my week has been chaotic.",
    "i was talking to my roommate about this earlier and we couldn't agree.",
    "i've been meaning to ask you this for a while.", "thanks for helping with the other thing yesterday btw.",
    "my brain is a bit fried after work so bear with me.", "this came up at dinner and now i'm curious.",
    "i have a few things to ask, starting with this one.", "no rush on this, whenever you get a chance.",
    "i'm on my phone so excuse the typos.", "context: i'm trying to get organised for the weekend.",
    "i tried figuring it out myself but got nowhere.", "my partner says i overthink this stuff.",
    "we have people coming over later and i want to be ready.", "also sorry for the wall of text.",
    "anyway.", "hope your day is going ok.", "i keep going back and forth on this.",
]

_QWERTY_NEIGHBOURS = dict(zip("qwertyuiopasdfghjklzxcvbnm", "wertyuiopqsdfghjklazxcvbnmz"))


def _typo(text: str, rng: random.Random) -> str:
    """One realistic slip: swap, drop, or hit the key to the right."""
    words = text.split()
    idx = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == 1:
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + _QWERTY_NEIGHBOURS.get(w[j], w[j]) + w[j + 1:]
    words[i] = w
    return " ".join(words)


def _style(text: str, rng: random.Random) -> str:
    """Chat-register variation: casing, punctuation, fillers, the odd typo."""
    r = rng.random()
    if r < 0.25:
        text = text[0].upper() + text[1:]
    if not text.endswith("?") and rng.random() < 0.35:
        text += "?"
    if rng.random() < 0.15:
        text = rng.choice(["hey ", "quick q: ", "penny, ", "yo ", "ok so ", "um "]) + text
    if rng.random() < 0.1:
        text += rng.choice([" thanks", " pls", " lol", " asap", " if you can"])
    if rng.random() < 0.2:
        text = _typo(text, rng)
    if rng.random() < 0.12:  # a voice transcript: lower case, no punctuation, a filler word
        text = rng.choice(["", "uh ", "um ", "okay ", "hey penny "]) + re.sub(r"[^\w\s']", "", text.lower())
    elif rng.random() < 0.15:
        before = " ".join(rng.sample(CONTEXT, rng.randint(0, 3)))
        after = " ".join(rng.sample(CONTEXT, rng.randint(0, 2)))
        text = f"{before} {text} {after}"
    return re.sub(r"\s+", " ", text).strip()


def generate(n_per_family: int, seed: int) -> list[dict[str, object]]:
    """Fill every family ``n_per_family`` times; duplicates are dropped, order is seeded."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for category, templates in FAMILIES:
        needs_research = category in RESEARCH_CATEGORIES
        # A family with few templates would only repeat itself; cap it by its variety.
        quota = min(n_per_family, 30 * len(templates))
        made = 0
        for _ in range(quota * 4):
            if made >= quota:
                break
            template = rng.choice(templates)
            text = re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)
            text = _style(text, rng)
            if text.lower() in seen:
                continue
            seen.add(text.lower())
            rows.append({"text": text, "needs_research": needs_research, "category": category})
            made += 1
    rng.shuffle(rows)
    return rows
