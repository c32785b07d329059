# Set-up is implicit: every target depends on what it needs and installs it when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SYSTEM_PACKAGES := etcd-server runc containernetworking-plugins iptables docker-registry skopeo umoci busybox-static \
                   iproute2 curl openssl zstd
# A command from each package, to tell whether it is installed without asking dpkg for each.
SYSTEM_PROBES := /usr/bin/etcd /usr/sbin/runc /usr/lib/cni/bridge /usr/sbin/iptables /usr/bin/docker-registry \
                 /usr/bin/skopeo /usr/bin/umoci /bin/busybox /usr/bin/curl /usr/sbin/ip /usr/bin/openssl /usr/bin/zstd
RUN_DIR ?= run
PORT ?= 6443

.PHONY: up test lint bench system venv proto clean

system:
	@missing=0; for p in $(SYSTEM_PROBES); do [ -e $$p ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing system packages: $(SYSTEM_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

up: system venv
	$(PY) -m navarch up --data-dir $(RUN_DIR) --port $(PORT) $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .

test: system venv lint
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: system venv
	$(PY) -m bench

proto: venv
	$(PY) -m proto.generate
	$(PY) -m proto.k8s.generate

clean:
	rm -rf $(VENV) $(RUN_DIR)
