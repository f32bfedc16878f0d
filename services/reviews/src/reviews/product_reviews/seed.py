"""Demo reviews for the demo catalog, made deterministically (same rows on every first start)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

__all__ = ["demo_reviews"]

_AUTHORS = ["maria.k", "jonas", "li.wei", "sam_outdoors", "fatima", "tomasz", "ines", "kofi", "hannah", "raj"]
_TEXTS = {
    5: [("Perfect", "Exactly what I hoped for, used it all summer."), ("Love it", "Light and well made.")],
    4: [
        ("Very good", "Does the job, one small niggle with the fit."),
        ("Solid", "Good value for the price."),
    ],
    3: [("Okay", "Works, but I expected more for the money."), ("Average", "Fine for occasional use.")],
    2: [("Disappointed", "Started to wear out after a few trips.")],
    1: [("Broke quickly", "Failed on the second outing; returned it.")],
}
_RATINGS = [5, 5, 5, 4, 4, 4, 4, 3, 3, 2, 1]


def demo_reviews() -> list[dict[str, object]]:
    rng = random.Random(1001)  # fixed seed: the demo data is the same everywhere
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for n in range(1001, 1033):
        product_id = f"p-{n}"
        count = 0 if n % 10 == 9 else rng.randint(2, 7)  # a few products have no reviews yet
        for author in rng.sample(_AUTHORS, count):
            rating = rng.choice(_RATINGS)
            title, body = rng.choice(_TEXTS[rating])
            created = start + timedelta(hours=rng.randint(0, 24 * 300))
            rows.append(
                {"product_id": product_id, "author": author, "rating": rating, "title": title, "body": body,
                 "created_at": created.isoformat()}
            )  # fmt: skip
    return rows
