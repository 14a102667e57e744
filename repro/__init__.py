"""repro: dynamic sampling in semantic segmentation, reproduced.

Papers: DSNet/CGDS (Fu et al., AAAI 2020), GDC/GDPP (Sun et al., IEEE TCSVT 2021,
arXiv 2104.08783) and DDSM (Li and Tong, ICIP 2021, arXiv 2105.11657).
"""

__version__ = "0.1.0"
