"""`accelerate launch` that reports a user mistake as corral's one line and exit code 2, never a traceback.

    python -m corral.launch --config_file accelerate_configs/cpu.yaml finetune/sft.py recipes/tiny/sft/lora.yaml
    python -m corral.launch --config_file accelerate_configs/cpu_ddp_2proc.yaml finetune/dpo.py RECIPE --beta 0.2

Same arguments as `accelerate launch` (its own parser parses them). Why a wrapper: accelerate 1.15 turns
any non-zero exit of the script into its own traceback and exit code 1 (measured on every config in
accelerate_configs/): the simple launcher raises `CalledProcessError` (`-q` silences it, for one process
only, still exit 1), and the torchrun launcher (multi-process, FSDP, DeepSpeed) raises `ChildFailedError`
with a 20-line report per rank. No exit a script can choose avoids that, so this runs accelerate's launcher
in-process and catches those two errors:

- Each rank that stops on a `CorralError` writes its line to `CORRAL_ERROR_DIR/rank-N.txt` (see
  `corral.recipe.run_cli`) instead of printing it, so N ranks do not print N copies; here the line of the
  rank that failed first is printed once, and the exit code is 2.
- Any other failure is a bug or a crash: the script's traceback has been printed by the script; here the
  launcher's failure summary follows (without the launcher's own traceback), and the exit code is the
  script's (128 + signal for a killed rank).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from corral.errors import USER_ERROR_EXIT

ERROR_DIR_ENV = "CORRAL_ERROR_DIR"
_ELASTIC_LOGGER = "torch.distributed.elastic.multiprocessing.api"


class _HoldFailureLogs(logging.Filter):
    """Holds torchrun's end-of-run lines ('failed (exitcode: 2)', 'Sending process N closing signal
    SIGTERM'): dropped after a user mistake, replayed after any other failure."""

    def __init__(self):
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "closing signal" in message or "failed (exitcode" in message:
            self.held.append(record)
            return False
        return True


def _not_thread_default_notice(record: logging.LogRecord) -> bool:
    # accelerate announces the OMP thread count it picked for a CPU run, as a warning, on every launch
    # without OMP_NUM_THREADS; corral's CPU configs rely on that default, so the notice says nothing new.
    message = record.getMessage()
    return not (message.startswith("The following values were not passed to `accelerate launch`")
                and message.count("\t`--") == 1 and "--num_cpu_threads_per_process" in message)


def user_error_line(error_dir: Path, first_rank: int | None) -> str | None:
    """The `error: ...` line written by the rank that failed first (or by any rank), if one was written."""
    files = sorted(error_dir.glob("rank-*.txt"))
    preferred = [f for f in files if f.name == f"rank-{first_rank}.txt"]
    for path in preferred + files:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    return None


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # a rank killed by signal N: the shell's 128 + N


def main(argv: list[str] | None = None) -> int:
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.config_file and not Path(args.config_file).is_file():
        configs = sorted(str(p) for p in Path("accelerate_configs").glob("*.yaml"))
        print(f"error: --config_file {args.config_file}: no such file"
              f"{' (configs here: ' + ', '.join(configs) + ')' if configs else ''}", file=sys.stderr)
        return USER_ERROR_EXIT
    hold = _HoldFailureLogs()
    logging.getLogger(_ELASTIC_LOGGER).addFilter(hold)
    logging.getLogger("accelerate.commands.launch").addFilter(_not_thread_default_notice)
    with tempfile.TemporaryDirectory(prefix="corral-errors-") as error_dir:
        os.environ[ERROR_DIR_ENV] = error_dir  # the launchers copy os.environ into every rank
        try:
            launch_command(args)
            return 0
        except subprocess.CalledProcessError as err:
            first_rank, code, summary = 0, err.returncode, None
        except ChildFailedError as err:
            first_rank, failure = err.get_first_failure()
            code, summary = failure.exitcode, err.format_msg()
        finally:
            os.environ.pop(ERROR_DIR_ENV, None)
            logging.getLogger(_ELASTIC_LOGGER).removeFilter(hold)
        line = user_error_line(Path(error_dir), first_rank)
    if line is not None:
        print(line, file=sys.stderr)
        return USER_ERROR_EXIT
    for record in hold.held:
        logging.getLogger(record.name).handle(record)
    if summary:
        print(summary, file=sys.stderr)
    return _exit_code(code)


if __name__ == "__main__":
    sys.exit(main())
