"""Before/after: per task, the unedited outputs, then each method's edited outputs on the same inputs:
image grids composed from the cells' stored strips, and for text the descriptions side by side."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from editbench.core import io
from editbench.world.descriptions import sentences


def before_after_grid(summary: pd.DataFrame, task: str, budget: int, out: Path, scale: int = 1) -> Path | None:
    """Rows: the unedited samples, then each method's edited samples (same latents and captions; the
    oracle's row is the renderer's answer), at ``scale`` x the native 64 px, labelled on the left."""
    from PIL import Image, ImageDraw, ImageFont

    st = summary[(summary.task == task) & (summary.budget == budget)].sort_values(["family_order", "method"])
    strips = [(r.method, Path(r.image)) for _, r in st.iterrows() if r.image and Path(r.image).is_file()]
    if not strips:
        return None
    rows: list[tuple[str, Image.Image]] = []
    for m, p in strips:
        a = Image.open(p).convert("RGB")
        h = a.height // 2
        if not rows and m != "oracle":
            rows.append(("unedited", a.crop((0, 0, a.width, h))))
        rows.append((m + (" (renders)" if m == "oracle" else ""), a.crop((0, h, a.width, 2 * h))))
    if rows[0][0] != "unedited":  # only the oracle had pictures: its renders before the edit
        a = Image.open(strips[0][1]).convert("RGB")
        rows.insert(0, ("unedited (renders)", a.crop((0, 0, a.width, a.height // 2))))
    w, h = rows[0][1].width * scale, rows[0][1].height * scale
    label_w, gap, top = 130, 3, 20
    canvas = Image.new("RGB", (label_w + w + gap, top + len(rows) * (h + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    draw.text((4, 4), f"{task}, n = {budget}: unedited, then each method (same latents and captions)",
              fill="black", font=font)
    for i, (label, img) in enumerate(rows):
        y = top + i * (h + gap)
        canvas.paste(img.resize((w, h), Image.NEAREST), (label_w, y))
        draw.text((label_w - 8, y + h // 2), label, fill="black", font=font, anchor="rm")
    return io.write_with(out, lambda tmp: canvas.save(tmp, format="PNG", optimize=True))



def highlight(text: str, other: str, tag: str) -> str:
    """``text`` as HTML with the sentences that ``other`` does not state wrapped in ``<tag>``."""
    theirs = set(sentences(other))
    return " ".join(html.escape(s) if s in theirs else f"<{tag}>{html.escape(s)}</{tag}>" for s in sentences(text))


def before_after_text(summary: pd.DataFrame, task: str, budget: int, k: int = 2) -> str:
    """HTML: for the first ``k`` captions of a text task, each method's description before and after its
    edit side by side (same caption and sampling noise; the oracle's are the world's descriptions), the
    facts that changed highlighted: sentences gone struck out on the left, sentences new marked on the
    right. Empty for image tasks."""
    st = summary[(summary.task == task) & (summary.budget == budget)].sort_values(["family_order", "method"])
    rows = [(r.method, r.examples) for _, r in st.iterrows() if isinstance(r.examples, list) and r.examples]
    if not rows:
        return ""
    first = rows[0][1]
    blocks = []
    for i in range(min(k, len(first))):
        items = ["<tr><th class='text'>method</th><th class='text'>before</th><th class='text'>after</th></tr>"]
        for method, ex in rows:
            if i < len(ex):
                b, a = ex[i]["before"], ex[i]["after"]
                label = method + (" (the world)" if method == "oracle" else "")
                items.append(f"<tr><td class='text'>{html.escape(label)}</td><td class='text'>{highlight(b, a, 'del')}"
                             f"</td><td class='text'>{highlight(a, b, 'mark')}</td></tr>")
        blocks.append(f"<p><b>caption:</b> {html.escape(first[i]['caption'])}</p>"
                      f"<table class='examples'>{''.join(items)}</table>")
    return "\n".join(blocks)
