"""The Learn tab: vRoPE, the pitch bias and the model statistics in a few formulas, then the
head-score definitions quoted from ``echo_core/head_scores.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from workbench import model_analysis as M
from workbench.ui.common import tab_selected

# Formula delimiters of LEARN_MD (gr.Markdown latex_delimiters).
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]

LEARN_MD = r"""
## vRoPE in five formulas

**Rotary position embedding.** Each attention head splits its $d$ channels into $d/2$ pairs; pair
$k$ of the query/key at position $t$ is rotated by the angle $t\,\omega_k$ with
$$\omega_k = \theta^{-2k/d},\qquad k = 0,\dots,d/2-1.$$
Small $k$ rotate fast (local detail), large $k$ slowly (long range). Because rotations compose,
the score between positions $i$ and $j$ depends only on their distance. The **Rotary patterns**
tab draws how positions "see" each other:
$$s(i,j) = \frac{1}{d/2}\sum_k \cos\big((i-j)\,\omega_k\big)$$
(bright diagonal, bands whose width grows with $\theta$). Move the **θ slider** and the **head
dim** radio.

**Pitch-modulated theta (the Echo idea).** The base is shifted by the voice's mean pitch
$\bar f_0$:
$$p(\bar f_0) = \frac{\ln(1+\bar f_0/700)}{\ln(1+300/700)},\qquad
\theta_\text{eff} = \theta + p(\bar f_0)\,(10000-800).$$
A higher voice gives a larger $\theta_\text{eff}$, hence slower rotation and wider bands. The
reference takes the mean over the whole F0 tensor, zeros of unvoiced frames included; the
project's checkpoints (``f0_mean = voiced``) and these pictures average voiced frames only. The
**per-frame** variant lets $\theta$ follow $f_0(t)$ frame by frame, so the angle is
$a_k(t)=\sum_{s<t}\omega_k(\theta_\text{eff}(f_0(s)))$ and the map is no longer a function of
$i-j$ alone.

**Variable radius.** Weighting pair $k$ by $r_k$ gives $s = \sum_k r_k^2\cos(\cdot)/\sum_k r_k^2$
(second variant panel, **tilt** slider). A radius per *position* $\rho_i$ cancels out of a
cosine, so it is shown on the raw dot product $\rho_i\rho_j\,s(i,j)$ (third panel;
$\rho = f_0/\max f_0$, 0 unvoiced).

**Pitch-similarity bias.** With $z_i = (f_{0,i}-\mu)/(\sigma+10^{-8})$ over voiced frames,
$$b_{ij} = \exp\!\big(-|z_i - z_j|\cdot \text{scale}\big)$$
is added to the pre-softmax scores: frames of similar pitch attend to each other. Unvoiced rows
and columns get 0 (no boost). The reference defines it but never applies it; see the **Pitch
bias** tab (and the combined prior $s + b$).

**Reading the model statistics.** At initialisation the gate/MLP activation ratio is already
about $\sqrt{5d/(d+1)}$ ($\approx 2.23$ at $d=512$): the layer shapes alone set it, and single
blocks of one fresh model spread widely around it. The **Model** tab therefore draws, per block,
the band of five fresh initialisations of the same model on the same clip, and colours a bar by
where it sits against its band; a block that never receives a gradient (its output is thrown
away) is flagged: its numbers are its initial weights. It also warns when a checkpoint uses the
reference's non-causal (additive) decoder mask.

**Does the model use pitch? Intervene.** A picture cannot tell; an experiment can. The
**Interventions** tab runs the model twice on the clip: on its true F0 and on a changed one
(constant, shifted, shuffled, reversed, rolled in time, another clip's, none, or the audio itself
pitch-shifted). Both runs score the *same* text, so the change in negative log-likelihood per
token, $\Delta\text{NLL} = \text{NLL}_\text{condition} - \text{NLL}_\text{true}$, says whether
the model needed the pitch it lost ($> 0$). A model that takes $\theta$ from the *mean* F0
cannot notice a shuffle of the same values; a model whose F0 reaches neither its rotary nor a
bias is unchanged by every contour. Over many clips (``python -m workbench.batch ... --conditions
true,shuffled``) the mean $\Delta$ comes with a paired bootstrap 95% interval.

**Per-head scores.** The **Model** tab scores every attention head: does it follow pitch,
rotary position or plain distance, how far does it look and how spread is it? A high pitch
score can simply mean the head attends nearby (F0 changes slowly), so read it beside the
*partial* score (pitch controlling for distance), and against its **null**: the same score
computed against ten contours of the same clip that keep its smoothness but lose its link to the
speech (rolled in time, shuffled). A head *follows pitch* only when it beats them (the
Interventions tab shows the null beside each head). The definitions, as
`echo_core/head_scores.py` states them:
"""
HEAD_SCORE_MD = "```text\n" + (M.HEAD_SCORE_DEFINITIONS or "").strip() + "\n```"


def build_learn_tab() -> SimpleNamespace:
    """The tab, built in place (inside gr.Tabs): text only."""
    with gr.Tab("Learn", id="learn", elem_id="tab-learn") as tab:
        gr.Markdown(LEARN_MD, latex_delimiters=LATEX)
        gr.Markdown(HEAD_SCORE_MD, elem_id="head-score-definitions")
    return SimpleNamespace(tab=tab)


def wire_learn(learn: SimpleNamespace, active_tab) -> None:
    """Remember that the tab is visible (nothing to redraw)."""
    tab_selected(learn.tab, "learn", active_tab)
