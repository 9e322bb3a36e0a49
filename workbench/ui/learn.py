"""The Learn tab: a lesson for a lecturer or a newcomer that walks the views in order (clip and
pitch, rotary patterns, vRoPE with its constants explained, the pitch bias, the model, head
scores with their null, interventions), each with a button that opens its view; the exact
head-score definitions, quoted from ``echo_core/head_scores.py``, folded away at the end.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from workbench import model_analysis as M
from workbench.ui.common import QUIET, tab_selected

# Formula delimiters of the lessons (gr.Markdown latex_delimiters).
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]

LESSONS = [  # (tab id to open, button text, lesson markdown)
    ("pitch", "Open Audio & Pitch", r"""
## 1. Listen and look: the clip and its pitch

Pick an **example clip** (or record yourself with the microphone button, or upload a file). The
**Audio & Pitch** tab draws the log-mel spectrogram with the pitch track $f_0(t)$ that Praat
finds every 8 ms. Gaps in the line are *unvoiced* frames (silence, "s", "f"): they have no pitch,
and every table and CSV leaves them empty rather than writing 0. The table under the plot gives
the statistics of the voiced frames. If Praat misses a low or a high voice, open **Praat pitch
settings** and move the floor or ceiling (a male voice sits around 85-180 Hz, a female one
around 165-255 Hz).
"""),
    ("rotary", "Open Rotary patterns", r"""
## 2. Rotary position: how positions see each other

Each attention head splits its $d$ channels into $d/2$ pairs; pair $k$ of the query and of the
key at position $t$ is turned by the angle $t\,\omega_k$ with
$$\omega_k = \theta^{-2k/d},\qquad k = 0,\dots,d/2-1.$$
Pair 0 turns fastest (local detail), the last pairs slowest (long range). Because turns compose,
the score between positions $i$ and $j$ depends only on their distance $i-j$. The **Rotary
patterns** tab draws this similarity,
$$s(i,j) = \frac{1}{d/2}\sum_k \cos\big((i-j)\,\omega_k\big):$$
the diagonal ($i=j$, $s=1$) is **dark red**, white means 0 (unrelated), blue negative. Try:

- **θ slider**: a larger $\theta$ slows every pair, so the red band along the diagonal widens
  (positions further apart still look alike). The band-width figure plots, for every $\theta$,
  the lag at which the similarity first falls below 0.5.
- **head dim**: more pairs, finer bands; the sweep at the bottom shows every $\theta$ x head dim.
- **positions**: the 8 ms mel frames, or the 16 ms grid the shipped models see (their front
  end halves the frame rate).
"""),
    ("rotary", "Open Rotary patterns", r"""
## 3. vRoPE: the voice sets θ (the Echo idea)

Echo moves $\theta$ with the speaker's mean pitch $\bar f_0$ (voiced frames):
$$p(\bar f_0) = \frac{\ln(1+\bar f_0/700)}{\ln(1+300/700)},\qquad
\theta_\text{eff} = \theta + p(\bar f_0)\,(10000-800).$$
Where the constants come from: 700 Hz is the corner of the mel scale
($\text{mel}(f) = 2595\log_{10}(1+f/700)$), so $p$ is the voice's pitch in mels relative to a
300 Hz voice ($p = 1$ at 300 Hz, 0 at 0 Hz). $10000-800 = 9200$ is how far one unit of $p$
moves $\theta$; the reference writes it as that difference of two numbers that appear nowhere
else. With $\theta = 10000$: a 100 Hz voice gets 13444, 200 Hz 16482, 300 Hz 19200. A higher
voice turns more slowly and its band is wider: compare the static and pitch-modulated maps in
the **Rotary patterns** tab, and read their **difference map** (the two look alike at first
sight; the difference shows where they part).

**Per-frame θ** lets $\theta$ follow $f_0(t)$ frame by frame: the angle adds up,
$a_k(t)=\sum_{s<t}\omega_k(\theta_\text{eff}(f_0(s)))$, and the map is no longer a function of
$i-j$ alone. **Variable radius** weights pair $k$ by $r_k$: $s = \sum_k r_k^2\cos(\cdot)/\sum_k
r_k^2$ (the **tilt** slider); a radius per position would cancel out of a cosine, so it is drawn
on the raw dot product $\rho_i\rho_j\,s(i,j)$ with $\rho = f_0/\max f_0$.
"""),
    ("bias", "Open Pitch bias", r"""
## 4. The pitch-similarity bias

With $z_i = (f_{0,i}-\mu)/\sigma$ the pitch of frame $i$ in standard units (voiced frames),
$$b_{ij} = \exp\!\big(-|z_i - z_j|\cdot \text{scale}\big)$$
is added to the attention scores before the softmax: frames of similar pitch attend to each
other more. Unvoiced rows and columns get 0 (no boost). The reference model defines this bias
but never applies it; models trained here with it on are marked "pitch bias". The **Pitch bias**
tab draws $b$ and the combined prior (rotary + bias); the **scale** slider sharpens it.
"""),
    ("model", "Open Model", r"""
## 5. Run a model and read it

The **Model** tab runs a checkpoint on the clip: its transcript, and every attention map
captured by hooks. A model that carries its CTC head (the default one) is decoded by a joint
CTC/attention beam search: the decoder proposes words, the CTC head checks them against every
frame, which stops the decoder from dropping or repeating a word; other models decode greedily. The default checkpoint was trained on espeak, flite and festival voices and
on real speakers of the Free Spoken Digit Dataset; the **Zoo** tab says how well each model
hears whom. Read, in order:

- **Gate / MLP bars.** Each block's gate output against its MLP output. At initialisation this
  ratio is already about $\sqrt{5d/(d+1)}$ ($\approx 2.23$ at $d = 512$): layer shapes alone set
  it. So each bar is drawn against the band of five fresh initialisations of the same model on
  the same clip, and coloured below / within / above its band; a block that never receives a
  gradient (its output is thrown away) is flagged: its numbers are its initial weights.
- **Attention maps**, per kind, layer and head (layers numbered as in the head-score tables).
- **Run settings** switch parts of the model off (F0 to the rotary, the decoder mask, the
  activation) for this run and in **Compare**; an ablated run says so and quotes no test WER.
"""),
    ("model", "Open Model", r"""
## 6. Does a head follow pitch? The head scores

Every attention head gets a few numbers (encoder self-attention: over pairs of different voiced
frames):

| score | what it measures | read it as |
|---|---|---|
| pitch | rank correlation of attention with pitch similarity $e^{-\lvert z_i-z_j\rvert}$ | high: attends to frames of similar pitch |
| rotary | rank correlation with the rotary similarity of that layer | high: attention follows position as the rotary encodes it |
| distance | rank correlation with $-\lvert i-j\rvert$ | high: simply attends nearby |
| partial pitch | pitch correlation with distance held fixed | near 0: the "pitch" score was just nearness (pitch changes slowly) |
| mean distance | how far a query looks, in frames and ms | small: local head |
| entropy | how spread a row of attention is; 1 = uniform | small: sharp head |

Rank correlations do not care about scale: doubling attention changes nothing. For decoder
cross-attention (text looking at audio) the pitch score asks whether a head listens more to
high-pitched frames. Text tokens have no pitch, so decoder self-attention has no pitch score
(panels say "n/a" and why).

**The null.** Pitch is smooth, so any head that attends nearby correlates with *any* smooth
contour. Each pitch score is therefore recomputed against ten contours of the same clip that
keep its smoothness but lose its link to the voice (rolled in time by 20-80 %, or its voiced
values shuffled). A head **follows pitch** only when its partial pitch score (cross-attention:
its pitch score) beats 95 % of them. With ten nulls the smallest possible p-value is 1/11, so
one clip never proves much: look across clips in the **Batch results** tab.
"""),
    ("interventions", "Open Interventions", r"""
## 7. Does the model use pitch? Intervene

A picture cannot tell; an experiment can. The **Interventions** tab runs the model twice on the
clip, on its true F0 and on a changed one: constant, shifted in semitones, scaled, shuffled,
reversed, rolled in time, another clip's, none, or the audio itself pitch-shifted. Both runs
score the *same* text, so the change in loss per token,
$\Delta\text{NLL} = \text{NLL}_\text{changed} - \text{NLL}_\text{true}$, says whether the model
needed the pitch it lost ($> 0$). A model that takes $\theta$ from the *mean* F0 cannot notice a
shuffle (same values, same mean), but a constant 100 Hz moves its $\theta$; a model whose F0
reaches neither its rotary nor a bias is unchanged by every contour. Over many clips
(`python -m workbench.batch ... --conditions true,shuffled,constant:100`) the mean change comes
with a paired bootstrap 95 % interval; the **Zoo** tab shows the result per trained config.
"""),
]

HEAD_SCORE_MD = "```text\n" + (M.HEAD_SCORE_DEFINITIONS or "").strip() + "\n```"


def build_learn_tab() -> SimpleNamespace:
    """The tab, built in place (inside gr.Tabs): the lessons, each with a button that opens
    the view it walks through; the full definitions (as the code states them) folded away."""
    links = []
    with gr.Tab("Learn", id="learn", elem_id="tab-learn") as tab:
        for i, (target, label, text) in enumerate(LESSONS):
            gr.Markdown(text, latex_delimiters=LATEX, elem_id=f"lesson-{i + 1}")
            links.append((target, gr.Button(label, size="sm", variant="secondary",
                                             elem_id=f"lesson-{i + 1}-open")))
        with gr.Accordion("Head scores: the exact definitions (as the code states them)",
                          open=False):
            gr.Markdown(HEAD_SCORE_MD, elem_id="head-score-definitions")
    return SimpleNamespace(tab=tab, links=links)


def wire_learn(learn: SimpleNamespace, active_tab, tabs) -> None:
    """Remember that the tab is visible; each lesson's button opens its view."""
    tab_selected(learn.tab, "learn", active_tab)
    for target, button in learn.links:
        button.click(lambda t=target: gr.Tabs(selected=t), None, tabs, **QUIET)
