"""How this project starts a real `tritonserver` on CPU: the binary, python backend and stub from `nvidia-pytriton`.

`make serve`, the integration tests (`tests/tritonserver.py`) and the benchmarks all build the command line here, so
they run the server the same way (see `shared/notes/triton-on-cpu.md`):
- the python backend (`libtriton_python.so`, `triton_python_backend_utils.py`) and the stub for this interpreter's
  Python version are copied from the wheel into `<project>/.tritonserver/backends/python/` (`prepare_backends`);
- the stub embeds libpython with `ignore_environment=1`, so PYTHONPATH is ignored and the interpreter's `bin/` goes
  first on PATH: the stub then imports from this very environment (numpy < 2, torch, onnxruntime, this package);
- `LD_LIBRARY_PATH` gets the wheel's `nvidia_pytriton.libs` for the copied backend.

    python -m mllm_protector.server prepare        # lay out the backend dir, print it
    python -m mllm_protector.server command        # print the argv make serve would run
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_HTTP_PORT, DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT = 8000, 8001, 8002


def project_root() -> Path:
    """The checkout this package runs from (editable install), else the current directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "model_repository").is_dir():
            return parent
    return Path.cwd()


def default_backend_dir() -> Path:
    return project_root() / ".tritonserver" / "backends"


def pytriton_server_dir() -> Path:
    """`site-packages/pytriton/tritonserver` of the installed nvidia-pytriton wheel (without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nvidia-pytriton is not installed: pip install 'nvidia-pytriton==0.7.0'")
    path = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    if not (path / "bin" / "tritonserver").exists():
        raise FileNotFoundError(f"no tritonserver binary under {path}")
    return path


def tritonserver_binary() -> Path:
    return pytriton_server_dir() / "bin" / "tritonserver"


def pytriton_libs_dir() -> Path:
    return pytriton_server_dir().parent.parent / "nvidia_pytriton.libs"


def stub_path(python_version: str | None = None) -> Path:
    version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = pytriton_server_dir() / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise FileNotFoundError(f"nvidia-pytriton ships no python backend stub for Python {version} ({stub})")
    return stub


def prepare_backends(backend_dir: Path | None = None, python_version: str | None = None) -> Path:
    """Lay out `<backend_dir>/python/` (backend library, utils, this Python's stub); idempotent; returns backend_dir."""
    backend_dir = Path(backend_dir or default_backend_dir())
    src = pytriton_server_dir() / "backends" / "python"
    dst = backend_dir / "python"
    dst.mkdir(parents=True, exist_ok=True)
    files = [(f, dst / f.name) for f in sorted(src.iterdir()) if f.is_file()]
    files.append((stub_path(python_version), dst / "triton_python_backend_stub"))
    for s, d in files:
        if d.exists() and d.stat().st_size == s.stat().st_size and d.stat().st_mtime_ns == s.stat().st_mtime_ns:
            continue
        tmp = d.with_name(d.name + ".tmp")
        shutil.copy2(s, tmp)  # keeps mode (the stub is executable) and mtime
        tmp.replace(d)
    return backend_dir


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the server: this interpreter's bin/ first on PATH, the wheel's libs on LD_LIBRARY_PATH."""
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    env["PATH"] = os.pathsep.join([bin_dir, *path])
    libs = [str(pytriton_libs_dir()), *[p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(dict.fromkeys(libs))
    # The stub ignores PYTHONPATH anyway; keep it out so nothing depends on it by accident.
    env.pop("PYTHONPATH", None)
    return env


def tritonserver_command(
    model_repository: str | Path,
    http_port: int = DEFAULT_HTTP_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
    metrics_port: int = DEFAULT_METRICS_PORT,
    config_name: str | None = "cpu",
    extra_args: Sequence[str] = (),
    backend_dir: str | Path | None = None,
    address: str = "127.0.0.1",
) -> tuple[list[str], dict[str, str]]:
    """(argv, env) to run tritonserver on `model_repository`; prepares the backend dir. `config_name=None` uses each
    model's `config.pbtxt` (GPU production); "cpu" selects `configs/cpu.pbtxt`."""
    backends = prepare_backends(Path(backend_dir) if backend_dir else None)
    argv = [
        str(tritonserver_binary()),
        f"--model-repository={Path(model_repository).resolve()}",
        f"--backend-directory={backends.resolve()}",
        f"--http-address={address}",
        f"--http-port={http_port}",
        f"--grpc-address={address}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={address}",
        f"--metrics-port={metrics_port}",
        "--allow-gpu-metrics=false",
    ]
    if config_name:
        argv.append(f"--model-config-name={config_name}")
    argv += list(extra_args)
    return argv, server_env()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["prepare", "command"])
    parser.add_argument("--model-repository", default=str(project_root() / "model_repository"))
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT)
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT)
    parser.add_argument("--config-name", default="cpu")
    args, extra = parser.parse_known_args(argv)
    if args.action == "prepare":
        print(prepare_backends())
        return 0
    cmd, env = tritonserver_command(
        args.model_repository, args.http_port, args.grpc_port, args.metrics_port, args.config_name or None, extra
    )
    print(f"PATH={shlex.quote(env['PATH'])} LD_LIBRARY_PATH={shlex.quote(env['LD_LIBRARY_PATH'])} {shlex.join(cmd)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
