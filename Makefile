# The two commands a newcomer needs (see README.md):
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run the whole test suite
#
# Everything installs into .venv from constraints.txt, the tested lock.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labkit-installed
JOBS   ?= 2

.PHONY: lab test setup build check-notebooks bench prebuild doctor data grade site browser-deps clean

# Kernels inherit the CPU kernel-dispatch pins (labkit/numerics.py), so a
# student's outputs match the stored ones on any x86-64 CPU with AVX2.
lab: setup
	env $$($(BIN)/python -m labkit.numerics env) $(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --notebook-dir=. notebooks/00_welcome.ipynb

test: setup browser-deps
	$(BIN)/python tools/run_tests.py -n $(JOBS)

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,site]'
	touch $(STAMP)

# The browser test drives Debian's chromium; install it when we can (root on
# Debian), otherwise that one test skips and says why.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will skip"; \
	  else echo "note: chromium not found and cannot be installed here; the browser test will skip"; fi; }

build: setup
	$(BIN)/python tools/build_lessons.py -j $(JOBS) $(LESSONS)

check-notebooks: setup
	$(BIN)/python tools/build_lessons.py --check

# Comparison libraries for the benchmark only, installed beside (not into) the
# venv: torchattacks declares torchvision, which does not load with this torch.
BENCH_EXTRAS := .cache/bench-extras
bench: setup
	test -d $(BENCH_EXTRAS) || $(BIN)/python -m pip install --quiet --no-deps --target $(BENCH_EXTRAS) torchattacks==3.5.1 captum==0.9.0
	$(BIN)/python tools/benchmark.py $(SECTIONS)

# The `labkit` command (labkit/cli.py) does the work; these targets only call it.
prebuild: setup
	$(BIN)/labkit prebuild --jobs $(JOBS) $(if $(CONFIG),--config $(CONFIG)) $(if $(DEVICE),--device $(DEVICE))

doctor: setup
	$(BIN)/labkit doctor

data: setup
	$(BIN)/labkit data fetch $(DATASETS)

# make grade SUBMISSIONS=path/to/folder  (runs the students' code: see README, Grading)
grade: setup
	$(BIN)/labkit grade $(or $(SUBMISSIONS),$(error set SUBMISSIONS=folder of notebooks)) --csv build/grades.csv

# The course site from the committed notebooks and their stored outputs (nothing is executed).
site: setup
	$(BIN)/python tools/build_site.py --out build/site

clean:
	rm -rf $(VENV) .cache build
