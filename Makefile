# The two front-door commands: `make run` (the main job) and `make test`.
# Both create .venv and install everything on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch/torchvision pinned to the builds this project is tested with (pip takes them from
# local disk on the project's machines; elsewhere it downloads them).
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install run docs test test-slow bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The main job: a real scaling sweep on digits (Ray Tune, CPU), its report (with the papers' claims
# tested on it), and the next sweep's spec. Rerunning reuses the finished sweep; an interrupted one resumes.
DEMO   ?= experiments/configs/digits_demo.yaml
RUNDIR ?= runs/digits_demo

run: install
	$(VENV)/bin/archscale sweep $(DEMO)
	$(VENV)/bin/archscale report $(RUNDIR)
	$(VENV)/bin/archscale suggest $(RUNDIR) --out $(RUNDIR)/next.yaml

# The README's figure, from the demo run (docs/demo_pareto_flops.png and its .json: the networks drawn).
docs: run
	$(PY) docs/make_figures.py $(RUNDIR)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) *.egg-info
