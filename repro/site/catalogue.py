"""What each paper contains that this book reproduces: its tables and figures, in order.

This is structure, not results: it says which items exist so that a chapter can list every
one with its status, including those no notebook regenerates yet.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPERS: dict[str, str] = {
    "gdc": "GDC / GDPP (Sun et al., IEEE TCSVT 2021)",
    "dsnet": "DSNet / CGDS (Fu et al., AAAI 2020)",
    "ddsm": "DDSM (Li and Tong, ICIP 2021)",
}


@dataclass(frozen=True)
class Item:
    label: str  # as the paper names it: "Table I", "Fig. 10", "text"
    what: str
    # Why no profile here can run it and the command that would, for an item that a notebook
    # covers only at its `full` profile (the chapter says "not run", not "not reproduced yet").
    not_run: str = ""


CATALOGUE: dict[str, list[Item]] = {
    "gdc": [
        Item(
            "Table I", "single-image segmentation: normal, dilated, deformable and GDC convolutions"
        ),
        Item(
            "Table II", "pseudo labels on PASCAL VOC 2012 against other weakly supervised methods"
        ),
        Item("Table III", "pseudo labels on PASCAL Context"),
        Item("Table IV", "the σ ablation of GDC"),
        Item("Table V", "MobileNetV2 with no context module, ASPP, S-ASPP and GDPP"),
        Item("Table VII", "GDC against a uniform random dynamic convolution"),
        Item(
            "text",
            "Cityscapes: DeepLabv3 with and without GDPP (in the text; Table VI lost)",
            not_run="needs Cityscapes, an ImageNet ResNet-101 and a GPU: "
            "`repro run gdc_gdpp --profile full -p dataset cityscapes`",
        ),
        Item("Fig. 10", "sampling positions of a GDC kernel for two values of σ"),
        Item("Fig. 11", "diversity of features over the optimisation steps (t-SNE)"),
    ],
    "dsnet": [
        Item("Table 1", "low-level / high-level feature pairs for CGDS (ResNet-50, VOC val)"),
        Item("Table 2", "training and evaluation strategies (DS, flip, MS, FT)"),
        Item("Table 3", "PASCAL VOC 2012 test, against the state of the art"),
        Item("Table 4", "ADE20K val, against the state of the art"),
        Item("Table 5", "PASCAL Context, against the state of the art"),
        Item("text", "sampler ablation (non-local 76.6) and DCNv2 / Dynamic Filter on ASPP"),
        Item(
            "Fig. 4",
            "segmentation maps of DeepLabv3+ and DSNet: large objects, small-object boundaries",
        ),
    ],
    "ddsm": [
        Item(
            "abstract: accuracy and boundaries",
            "DDSM against the full non-local module and the baseline without it: mIoU, "
            "boundary F, trimap IoU (no table available)",
        ),
        Item(
            "module figure",
            "the spatial and channel branches alone and together; where a boundary pixel's "
            "sampled points lie",
        ),
        Item(
            "abstract: efficiency",
            "FLOPs, peak memory and time against the full non-local module over the map size",
        ),
        Item(
            "abstract: Cityscapes and CamVid",
            "the claims at the paper-like setting on Cityscapes and CamVid",
            not_run="needs Cityscapes or CamVid and a GPU: `repro run ddsm_affinity --profile "
            "full -p dataset cityscapes` (or `-p dataset camvid`)",
        ),
    ],
}
