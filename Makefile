# Stockmatch: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1:8000
DATA ?=

.PHONY: demo test serve venv migrate lint clean-db

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

demo: migrate
ifeq ($(strip $(DATA)),)
	$(PY) manage.py demo_data
else
	$(PY) manage.py demo_data --csv "$(DATA)"
endif
	$(PY) manage.py demo_users
	$(PY) manage.py export_models
	$(PY) manage.py mirror_key "Demo mirror" --base-url "http://$(HOST)"
	$(PY) manage.py runserver $(HOST)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

# Production start: DJANGO_ENV=production with DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS set (README).
serve: export DJANGO_ENV = production
serve: $(STAMP)
	$(PY) manage.py check --deploy
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py migrate --noinput
	$(PY) manage.py export_models
	$(VENV)/bin/gunicorn --config warehouse/gunicorn.conf.py warehouse.wsgi:application
