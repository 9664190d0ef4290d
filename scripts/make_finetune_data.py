"""Write the seeded example fine-tuning data: finance headlines with sentiment, and chat instructions.

    python scripts/make_finetune_data.py   # -> assets/data/finance_headlines.csv, assets/data/instructions.jsonl
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "data"
SEED = 7
ROWS = 1500
NOISE = 0.03  # share of labels flipped at random, as in hand-labelled data

COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Corp", "Hooli", "Vandelay",
             "Soylent", "Cyberdyne", "Tyrell", "Wonka", "Oscorp", "Gringotts Bank", "Pied Piper", "Massive Dynamic"]
METRICS = ["profit", "revenue", "sales", "earnings", "margins", "guidance", "dividend", "orders"]
QUARTERS = ["first-quarter", "second-quarter", "third-quarter", "fourth-quarter", "annual", "half-year"]
TEMPLATES = {
    "positive": [
        "{c} shares surge after {q} {m} beat forecasts",
        "{c} raises {m} outlook as demand grows",
        "{c} posts record {q} {m}, stock jumps {p}%",
        "Investors cheer as {c} {m} climb {p}%",
        "{c} wins major contract, shares rally",
        "Analysts upgrade {c} on strong {m}",
        "{c} {m} rise {p}% beating expectations",
        "{c} boosts dividend after strong {q} results",
    ],
    "negative": [
        "{c} shares plunge after {q} {m} miss forecasts",
        "{c} cuts {m} outlook as demand weakens",
        "{c} posts {q} loss, stock falls {p}%",
        "Investors flee as {c} {m} drop {p}%",
        "{c} loses major contract, shares slump",
        "Analysts downgrade {c} on weak {m}",
        "{c} {m} fall {p}% missing expectations",
        "{c} suspends dividend after poor {q} results",
    ],
    "neutral": [
        "{c} to report {q} {m} on Thursday",
        "{c} names new chief financial officer",
        "{c} holds annual shareholder meeting",
        "{c} {m} in line with forecasts, shares flat",
        "{c} moves headquarters to a new city",
        "{c} schedules call to discuss {q} {m}",
        "{c} completes previously announced share split",
        "{c} confirms {q} {m} date",
    ],
}
WEIGHTS = {"neutral": 0.4, "positive": 0.3, "negative": 0.3}  # majority baseline: 40%
ANSWERS = {"positive": "positive", "negative": "negative", "neutral": "neutral"}


def headline(rng: random.Random, label: str) -> str:
    template = rng.choice(TEMPLATES[label])
    return template.format(c=rng.choice(COMPANIES), m=rng.choice(METRICS), q=rng.choice(QUARTERS),
                           p=rng.randint(2, 35))


def labelled_rows(rng: random.Random, count: int) -> list[tuple[str, str]]:
    labels = list(WEIGHTS)
    rows = []
    for _ in range(count):
        label = rng.choices(labels, weights=list(WEIGHTS.values()))[0]
        text = headline(rng, label)
        shown = rng.choice(labels) if rng.random() < NOISE else label
        rows.append((text, shown))
    return rows


def instructions(rng: random.Random, count: int) -> list[dict[str, list[dict[str, str]]]]:
    records = []
    for text, label in labelled_rows(rng, count):
        question = f"Sentiment of this headline: {text}"
        records.append({"messages": [{"role": "user", "content": question},
                                     {"role": "assistant", "content": f"The sentiment is {ANSWERS[label]}."}]})
    return records


def main() -> None:
    rng = random.Random(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "finance_headlines.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["headline", "sentiment"])
        writer.writerows(labelled_rows(rng, ROWS))
    with (OUT / "instructions.jsonl").open("w", encoding="utf-8") as handle:
        for record in instructions(rng, 200):
            handle.write(json.dumps(record) + "\n")
    print(f"wrote {OUT / 'finance_headlines.csv'} ({ROWS} rows) and {OUT / 'instructions.jsonl'} (200 chats)")


if __name__ == "__main__":
    main()
