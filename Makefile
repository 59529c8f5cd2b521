# The commands the README gives. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO := var/demo

.PHONY: install system-packages axe-core migrate demo test test-fast lint bench serve serve-production clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Chromium, its driver and nginx for the tests (Debian packages; says so when it cannot install them).
system-packages:
	@bash scripts/system-packages

# axe-core, the accessibility checker the browser tests inject into pages (npm, pinned in package-lock.json).
axe-core:
	@test -f node_modules/axe-core/axe.min.js || npm ci --no-audit --no-fund --silent \
	  || echo "axe-core: npm could not install it (node and npm are needed); the accessibility tests fail without it."

migrate: install
	$(PY) manage.py migrate --noinput -v0

# The whole job on the embedded default: SQLite, in-process Celery, the bundled demo network.
demo: migrate
	@test -f $(DEMO)/truth.npz || $(PY) manage.py demo_world --out $(DEMO) --count 600
	@test -f $(DEMO)/index.csv || $(PY) manage.py demo_world --out $(DEMO) --broden
	$(PY) manage.py dissect --network demo --layers conv3 --probe broden $(DEMO) --name demo --rf-images 20
	$(PY) manage.py create_campaign demo --network demo --layers conv3 --exist-ok
	$(PY) manage.py publish demo --backend local
	$(PY) manage.py simulate_crowd demo --workers 10 --spammers 0.2 --noise 0.1
	$(PY) manage.py dissect --network demo-resnet --layers layer3 --probe broden $(DEMO) --name demo-resnet --rf-images 20
	$(PY) manage.py create_campaign demo-resnet --network demo-resnet --layers layer3 --exist-ok
	$(PY) manage.py publish demo-resnet --backend local
	$(PY) manage.py simulate_crowd demo-resnet --workers 10 --spammers 0.2 --noise 0.1
	@echo "Object detectors among the top layers' units, the three-conv network beside the residual one:"
	$(PY) manage.py aggregate
	@echo "Does each detector's label hold beyond its top images? Yes/No ratings of 180 probe images a unit:"
	$(PY) manage.py probe_scores demo
	$(PY) manage.py create_campaign demo-presence --task presence --from demo --exist-ok
	$(PY) manage.py publish demo-presence --backend local
	$(PY) manage.py simulate_crowd demo-presence --task presence --workers 6 --spammers 0 --flip 0.23
	@echo "Network Dissection's automatic labels (IoU on the demo world's per-pixel truth) beside the crowd's:"
	$(PY) manage.py label_automatic demo --probe $(DEMO) --quiet
	$(PY) manage.py label_automatic demo-resnet --probe $(DEMO) --quiet
	$(PY) manage.py export --format table --network demo
	$(PY) manage.py export --format json --network demo --output $(DEMO)/units.json
	$(PY) manage.py export --format csv --network demo --output $(DEMO)/units.csv
	$(PY) manage.py export --format tally --network demo --output $(DEMO)/tally.csv
	$(PY) manage.py figures --network demo --out $(DEMO)/figures
	@echo "Units: $(DEMO)/units.csv, $(DEMO)/units.json, $(DEMO)/tally.csv; figures above."
	@echo "Segmentations and RFs are under var/media/dissections/."
	@echo "Annotate yourself: make serve, then open the link that"
	@echo "  $(PY) manage.py annotators link me"
	@echo "prints. Review dashboard: $(PY) manage.py createsuperuser, make serve, then"
	@echo "  http://127.0.0.1:8000/dashboard/ (units, reviews, campaign money and workers, figures)"

test: install system-packages axe-core
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: migrate
	$(PY) benchmarks/run.py
	$(PY) benchmarks/hit_page.py
	$(PY) benchmarks/presence.py
	$(PY) benchmarks/tally.py

serve: migrate
	$(PY) manage.py runserver

# As in production: gunicorn on loopback behind nginx, which buffers slow clients (deploy/serve-production).
serve-production: migrate
	bash deploy/serve-production

clean:
	rm -rf var db.sqlite3
