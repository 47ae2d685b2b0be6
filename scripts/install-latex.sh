#!/bin/sh
# Installs what gradproof needs to build and check the PDF report: Debian's LaTeX (pdflatex,
# latexmk, Latin Modern fonts, TikZ from texlive-pictures for the cell diagrams, placeins from
# texlive-latex-extra for float placement) and poppler-utils (pdftotext, pdftoppm). Does nothing when they are
# already there; without apt-get it says what to install and leaves the rest of the command going
# (gradproof then writes the .tex and says how to get a PDF).
set -eu
PACKAGES="texlive-latex-base texlive-latex-recommended texlive-pictures texlive-latex-extra latexmk lmodern poppler-utils"
have() { command -v "$1" >/dev/null 2>&1; }
if have latexmk && have pdflatex && have pdftotext && kpsewhich lmodern.sty tikz.sty placeins.sty >/dev/null 2>&1; then
    exit 0
fi
if ! have apt-get; then
    echo "install-latex: no apt-get here; install a TeX distribution with latexmk, lmodern and poppler-utils for the PDF" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if have sudo; then SUDO="sudo"; else
        echo "install-latex: not root and no sudo; run as root: apt-get install $PACKAGES" >&2
        exit 0
    fi
fi
echo "install-latex: apt-get install $PACKAGES (a minute or two, a few hundred MB)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
