"""Product pictures drawn here: catalog's ``/img/products/<id>.jpg`` (and ``<id>-thumb.jpg``) resolve to
an SVG landscape coloured by a hash of the id, so every product has a picture and nothing is fetched
from elsewhere. The same id always gives the same picture."""

from __future__ import annotations

import hashlib
import re

from chassis import ServiceError
from chassis.params import ID_PATTERN

__all__ = ["NoSuchPicture", "product_picture"]

_ID = re.compile(ID_PATTERN)
_SUFFIXES = (".jpg", ".svg")  # what catalog's seed names, and what the files really are
_THUMB = "-thumb"


class NoSuchPicture(ServiceError):
    status = 404
    title = "Not Found"


def product_picture(*, name: str) -> str:
    """The SVG for a picture file name of catalog (``p-1001.jpg``, ``p-1001-thumb.jpg``)."""
    stem = next((name.removesuffix(s) for s in _SUFFIXES if name.endswith(s)), None)
    if stem is None:
        raise NoSuchPicture(f"No picture {name!r}.")
    thumb = stem.endswith(_THUMB)
    product_id = stem.removesuffix(_THUMB) if thumb else stem
    if not _ID.fullmatch(product_id):  # the id is drawn as text below: only id characters get there
        raise NoSuchPicture(f"No picture {name!r}.")
    digest = hashlib.sha256(product_id.encode()).digest()
    hue, peak, ridge = digest[0] * 360 // 256, 30 + digest[1] % 50, 50 + digest[2] % 40
    sun_x, sun_y = 20 + digest[3] % 120, 18 + digest[4] % 20
    width, height = (160, 120) if thumb else (640, 480)
    label = (
        ""
        if thumb
        else f'<text x="8" y="114" font-family="monospace" font-size="8" fill="#fff">{product_id}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 160 120">'
        f'<rect width="160" height="120" fill="hsl({hue},60%,86%)"/>'
        f'<circle cx="{sun_x}" cy="{sun_y}" r="11" fill="hsl({(hue + 40) % 360},90%,65%)"/>'
        f'<polygon points="0,120 0,{ridge + 20} {peak + 40},{ridge - 25} 160,{ridge + 30} 160,120" '
        f'fill="hsl({hue},35%,55%)"/>'
        f'<polygon points="0,120 {peak},{ridge + 5} {peak + 70},120" fill="hsl({hue},40%,35%)"/>'
        f'<polygon points="50,120 {peak + 80},{ridge - 5} 160,{ridge + 25} 160,120" fill="hsl({hue},45%,28%)"/>'
        f"{label}</svg>"
    )
