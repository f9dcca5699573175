# `make demo` and `make test` each work on a fresh machine: they build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

# Debian packages: EGL/GL for offscreen MuJoCo and OpenCV; ROS 1 (rosmaster, rospy, messages)
# for the real/ tests, which start real ROS peers (the venv reaches rospy through real/rospath.py).
APT_PACKAGES := libegl1 libgl1 libglib2.0-0 libgomp1 \
	python3-rospy python3-rosmaster python3-rostopic python3-std-msgs python3-sensor-msgs \
	python3-geometry-msgs python3-trajectory-msgs python3-std-srvs python3-websockets

.PHONY: demo test lint format system-deps venv clean

demo: $(STAMP)
	$(VENV)/bin/uvdiff-demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: 2.13.0 (CPU build) so no other package drags in a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "install them with: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) outputs .pytest_cache
