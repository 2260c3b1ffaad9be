"""Synthetic, seeded text for the demo models: rerank pairs and a multilingual corpus.

Nothing here is downloaded. The rerank pairs fine-tune the demo cross-encoder; the corpus
trains the Unigram tokenizer of the tiny XLM-R reranker. Subjects are split into a train
and a held-out part so a test can check that the cross-encoder generalises to subjects it
never saw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class Subject:
    """A topic: how a user names it in a query, and sentences that answer it."""

    name: str
    facts: tuple[str, ...]


SUBJECTS: tuple[Subject, ...] = (
    Subject(
        "the giant panda",
        (
            "The giant panda is a bear species endemic to China.",
            "Giant pandas eat bamboo for most of the day.",
            "A newborn panda cub weighs about one hundred grams.",
        ),
    ),
    Subject(
        "the eiffel tower",
        (
            "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
            "Gustave Eiffel's company built the tower for the 1889 World's Fair.",
            "Millions of tourists climb the Eiffel Tower every year.",
        ),
    ),
    Subject(
        "photosynthesis",
        (
            "Photosynthesis is the process plants use to turn light into chemical energy.",
            "During photosynthesis, leaves take in carbon dioxide and release oxygen.",
            "Chlorophyll absorbs the light that drives photosynthesis.",
        ),
    ),
    Subject(
        "the python programming language",
        (
            "Python is a programming language known for its readable syntax.",
            "Guido van Rossum released the first version of Python in 1991.",
            "Python code is often used for data science and scripting.",
        ),
    ),
    Subject(
        "the moon",
        (
            "The Moon is the only natural satellite of the Earth.",
            "The Moon's gravity causes the tides of the oceans.",
            "Astronauts first walked on the Moon in 1969.",
        ),
    ),
    Subject(
        "coffee",
        (
            "Coffee is a drink brewed from roasted coffee beans.",
            "Caffeine in coffee keeps many people awake in the morning.",
            "Brazil grows more coffee than any other country.",
        ),
    ),
    Subject(
        "the violin",
        (
            "The violin is a string instrument played with a bow.",
            "A violin has four strings tuned in perfect fifths.",
            "Stradivari made some of the most famous violins.",
        ),
    ),
    Subject(
        "volcanoes",
        (
            "A volcano is an opening in the crust where lava erupts.",
            "Volcanic eruptions throw ash and gas into the air.",
            "Mount Etna is one of the most active volcanoes in Europe.",
        ),
    ),
    Subject(
        "the human heart",
        (
            "The heart is a muscle that pumps blood through the body.",
            "A human heart beats about seventy times a minute at rest.",
            "The heart has four chambers: two atria and two ventricles.",
        ),
    ),
    Subject(
        "chess",
        (
            "Chess is a board game for two players on a checkered board.",
            "In chess, the goal is to checkmate the opponent's king.",
            "Each chess player starts with sixteen pieces.",
        ),
    ),
    Subject(
        "the amazon rainforest",
        (
            "The Amazon rainforest covers much of the Amazon basin in South America.",
            "The Amazon rainforest is home to millions of insect species.",
            "Deforestation threatens large parts of the Amazon rainforest.",
        ),
    ),
    Subject(
        "bitcoin",
        (
            "Bitcoin is a decentralised digital currency.",
            "New bitcoins are created through a process called mining.",
            "The bitcoin network records transactions on a blockchain.",
        ),
    ),
    Subject(
        "the great wall of china",
        (
            "The Great Wall of China is a series of fortifications in northern China.",
            "Construction of the Great Wall lasted for many centuries.",
            "The Great Wall stretches for thousands of kilometres.",
        ),
    ),
    Subject(
        "honey bees",
        (
            "Honey bees live in colonies ruled by a single queen.",
            "Bees make honey from the nectar of flowers.",
            "Honey bees pollinate many crops and wild plants.",
        ),
    ),
    Subject(
        "the olympic games",
        (
            "The Olympic Games are an international multi-sport event.",
            "The modern Olympic Games began in Athens in 1896.",
            "Athletes at the Olympics compete for gold, silver and bronze medals.",
        ),
    ),
    Subject(
        "electric cars",
        (
            "Electric cars run on batteries instead of petrol.",
            "An electric car is charged by plugging it into a power outlet.",
            "Electric vehicles produce no exhaust fumes while driving.",
        ),
    ),
    Subject(
        "the pyramids of giza",
        (
            "The pyramids of Giza were built as tombs for Egyptian pharaohs.",
            "The Great Pyramid of Giza is the oldest of the seven wonders.",
            "The Giza pyramids stand near Cairo in Egypt.",
        ),
    ),
    Subject(
        "sourdough bread",
        (
            "Sourdough bread is leavened with a starter of wild yeast.",
            "A sourdough starter needs regular feeding with flour and water.",
            "Sourdough loaves have a tangy taste and a chewy crust.",
        ),
    ),
    Subject(
        "the piano",
        (
            "The piano is a keyboard instrument with hammers that strike strings.",
            "A standard piano has eighty-eight keys.",
            "Bartolomeo Cristofori invented the piano around 1700.",
        ),
    ),
    Subject(
        "black holes",
        (
            "A black hole is a region of space from which light cannot escape.",
            "Black holes form when massive stars collapse.",
            "The first image of a black hole was published in 2019.",
        ),
    ),
    Subject(
        "penguins",
        (
            "Penguins are flightless birds of the southern hemisphere.",
            "Emperor penguins breed during the Antarctic winter.",
            "Penguins use their wings as flippers to swim.",
        ),
    ),
    Subject(
        "the french revolution",
        (
            "The French Revolution began in 1789 with the storming of the Bastille.",
            "The French Revolution ended the absolute monarchy in France.",
            "King Louis XVI was executed during the French Revolution.",
        ),
    ),
    Subject(
        "tea",
        (
            "Tea is made by pouring hot water over cured tea leaves.",
            "Green tea and black tea come from the same plant.",
            "China and India are the largest producers of tea.",
        ),
    ),
    Subject(
        "football",
        (
            "Football is a team sport played with a ball between two teams of eleven.",
            "A football match lasts ninety minutes plus stoppage time.",
            "The FIFA World Cup is the biggest football tournament.",
        ),
    ),
    Subject(
        "the internet",
        (
            "The internet is a global network of connected computers.",
            "The internet grew out of the ARPANET research network.",
            "Web pages travel over the internet using the HTTP protocol.",
        ),
    ),
    Subject(
        "dinosaurs",
        (
            "Dinosaurs were reptiles that dominated the land for millions of years.",
            "Most dinosaurs went extinct about sixty-six million years ago.",
            "Birds are the living descendants of dinosaurs.",
        ),
    ),
    Subject(
        "the mediterranean diet",
        (
            "The Mediterranean diet is rich in olive oil, vegetables and fish.",
            "Doctors link the Mediterranean diet to a healthy heart.",
            "The Mediterranean diet includes little red meat.",
        ),
    ),
    Subject(
        "mount everest",
        (
            "Mount Everest is the highest mountain above sea level.",
            "Mount Everest lies in the Himalayas on the border of Nepal and China.",
            "Edmund Hillary and Tenzing Norgay first climbed Everest in 1953.",
        ),
    ),
    Subject(
        "vaccines",
        (
            "Vaccines train the immune system to recognise a disease.",
            "Edward Jenner developed the first vaccine against smallpox.",
            "Many vaccines are given to children in their first years.",
        ),
    ),
    Subject(
        "the guitar",
        (
            "The guitar is a fretted string instrument usually with six strings.",
            "An electric guitar needs an amplifier to be heard.",
            "Flamenco music is often played on the guitar.",
        ),
    ),
    Subject(
        "solar panels",
        (
            "Solar panels convert sunlight into electricity.",
            "Solar panels are made of photovoltaic cells.",
            "Many homes install solar panels on their roofs.",
        ),
    ),
    Subject(
        "the roman empire",
        (
            "The Roman Empire ruled the Mediterranean world for centuries.",
            "Augustus became the first emperor of the Roman Empire.",
            "The Western Roman Empire fell in 476.",
        ),
    ),
    Subject(
        "sharks",
        (
            "Sharks are fish with skeletons made of cartilage.",
            "The great white shark is a large predatory shark.",
            "Sharks have existed for more than four hundred million years.",
        ),
    ),
    Subject(
        "the stock market",
        (
            "The stock market is where shares of companies are bought and sold.",
            "Stock prices rise and fall with supply and demand.",
            "The New York Stock Exchange is the largest stock market.",
        ),
    ),
    Subject(
        "rainbows",
        (
            "A rainbow appears when sunlight is refracted by raindrops.",
            "A rainbow shows the colours of the visible spectrum.",
            "You see a rainbow with the sun behind you.",
        ),
    ),
    Subject(
        "sushi",
        (
            "Sushi is a Japanese dish of vinegared rice with fish or vegetables.",
            "Nigiri sushi is a slice of fish on a ball of rice.",
            "Sushi is often served with soy sauce and wasabi.",
        ),
    ),
    Subject(
        "the printing press",
        (
            "Johannes Gutenberg invented the printing press around 1440.",
            "The printing press made books cheaper and more common.",
            "The printing press used movable metal type.",
        ),
    ),
    Subject(
        "earthquakes",
        (
            "An earthquake is a sudden shaking of the ground.",
            "Earthquakes happen when tectonic plates slip along faults.",
            "The Richter scale measures the strength of earthquakes.",
        ),
    ),
    Subject(
        "the saxophone",
        (
            "The saxophone is a woodwind instrument made of brass.",
            "Adolphe Sax invented the saxophone in the 1840s.",
            "The saxophone is central to jazz music.",
        ),
    ),
    Subject(
        "yoga",
        (
            "Yoga is a practice of postures, breathing and meditation.",
            "Yoga originated in ancient India.",
            "Regular yoga can improve flexibility and balance.",
        ),
    ),
    Subject(
        "the titanic",
        (
            "The Titanic was a British passenger liner that sank in 1912.",
            "The Titanic struck an iceberg on its maiden voyage.",
            "More than 1500 people died when the Titanic sank.",
        ),
    ),
    Subject(
        "wolves",
        (
            "Wolves are wild canines that live and hunt in packs.",
            "A wolf pack is usually a family led by a breeding pair.",
            "Wolves howl to communicate with their pack.",
        ),
    ),
    Subject(
        "the periodic table",
        (
            "The periodic table arranges the chemical elements by atomic number.",
            "Dmitri Mendeleev published an early periodic table in 1869.",
            "Elements in the same column of the periodic table behave alike.",
        ),
    ),
    Subject(
        "cheese",
        (
            "Cheese is a food made from the curd of milk.",
            "Cheddar and brie are popular kinds of cheese.",
            "Some cheeses are aged for years to develop flavour.",
        ),
    ),
    Subject(
        "hurricanes",
        (
            "A hurricane is a strong tropical storm with circular winds.",
            "Hurricanes form over warm ocean water.",
            "The eye of a hurricane is calm compared with the storm around it.",
        ),
    ),
    Subject(
        "the bicycle",
        (
            "A bicycle is a two-wheeled vehicle driven by pedals.",
            "Cycling to work is a healthy way to commute by bicycle.",
            "The Tour de France is the most famous bicycle race.",
        ),
    ),
    Subject(
        "climate change",
        (
            "Climate change is the long-term warming of the planet.",
            "Burning fossil fuels releases the gases that drive climate change.",
            "Rising sea levels are one effect of climate change.",
        ),
    ),
    Subject(
        "elephants",
        (
            "Elephants are the largest living land animals.",
            "An elephant uses its trunk to drink and to grab food.",
            "African elephants have larger ears than Asian elephants.",
        ),
    ),
)

TRAIN_QUERY_TEMPLATES: tuple[str, ...] = (
    "what is {name}?",
    "tell me about {name}",
    "{name}",
    "facts about {name}",
    "information on {name}",
)
# Held-out pairs use query phrasings the model never saw in training either.
HELDOUT_QUERY_TEMPLATES: tuple[str, ...] = (
    "explain {name}",
    "what do you know about {name}?",
)

# One subject in four is held out; the split depends only on this seed.
SPLIT_SEED = 1234
HELDOUT_FRACTION = 0.25


def subjects(split: Split) -> list[Subject]:
    """The train or held-out subjects (a fixed, seeded partition of SUBJECTS)."""
    order = list(range(len(SUBJECTS)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_heldout = round(len(SUBJECTS) * HELDOUT_FRACTION)
    chosen = order[:n_heldout] if split == "heldout" else order[n_heldout:]
    return [SUBJECTS[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class RerankPair:
    query: str
    document: str
    relevant: bool


def rerank_pairs(split: Split, seed: int = 0, negatives_per_positive: int = 1) -> list[RerankPair]:
    """(query, relevant fact) and (query, fact about another subject of the same split) pairs."""
    rng = random.Random(seed)
    pool = subjects(split)
    templates = TRAIN_QUERY_TEMPLATES if split == "train" else HELDOUT_QUERY_TEMPLATES
    pairs: list[RerankPair] = []
    for subject in pool:
        others = [s for s in pool if s is not subject]
        for template in templates:
            query = template.format(name=subject.name)
            for fact in subject.facts:
                pairs.append(RerankPair(query, fact, True))
                for _ in range(negatives_per_positive):
                    pairs.append(RerankPair(query, rng.choice(rng.choice(others).facts), False))
    rng.shuffle(pairs)
    return pairs


# --- multilingual corpus for the Unigram tokenizer of the tiny XLM-R reranker ---

# Word lists, space separated; Chinese and Japanese words are joined without spaces.
_ENGLISH = (
    "the quick brown fox jumps over a lazy dog while the panda eats bamboo in the mountains of china "
    "search engines rank documents by relevance to a query reranker models score each pair "
    "welcome good morning farewell hello what is where when why how many people live in this city"
)
_ACCENTED = (
    "café crème brûlée déjà vu élève façade garçon naïve résumé über straße größe müde niño señor "
    "mañana corazón canção ação coração più città perché ångström smörgåsbord łódź žluťoučký kůň "
    "tiếng việt phở"
)
_CHINESE = "熊猫 生活 在 中国 的 山区 吃 竹子 搜索 引擎 文档 相关 你好 世界 北京 学习 语言 模型 天气 很好"
_JAPANESE = (
    "パンダ は 中国 の 山 に 住んで います 検索 エンジン ひらがな カタカナ 東京 日本語 こんにちは "
    "ありがとう 文書 を 並べ替え ます"
)
_EMOJI = "😀 🐼 🎉 👍 🚀 ❤️ 🇯🇵 👩\u200d💻 ☕ 🌍"
_PUNCTUATION = ". , ! ? : ; - ( ) ' \" % 0 1 2 3 42 2024"


def multilingual_corpus(n_lines: int = 4000, seed: int = 0) -> list[str]:
    """Seeded sentences mixing English, accented Latin, Chinese, Japanese, emoji and digits."""
    rng = random.Random(seed)
    languages = (
        (_ENGLISH.split(), " "),
        (_ACCENTED.split(), " "),
        (_CHINESE.split(), ""),
        (_JAPANESE.split(), ""),
    )
    emoji, punctuation = _EMOJI.split(), _PUNCTUATION.split()
    lines = []
    for _ in range(n_lines):
        words, joiner = rng.choice(languages)
        sentence = joiner.join(rng.choice(words) for _ in range(rng.randint(2, 14)))
        if rng.random() < 0.3:
            sentence = rng.choice((sentence.capitalize(), sentence.upper()))
        if rng.random() < 0.3:
            sentence += " " + rng.choice(emoji)
        if rng.random() < 0.4:
            sentence += rng.choice(punctuation)
        lines.append(sentence)
    return lines
