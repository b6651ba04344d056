"""`llm-tutorial` commands for the tests, started in 0.1 s instead of 3.

Most of a small command's time is `import torch`. A server process imports torch once
and forks a child for each command; the child sets the command's environment, working
folder and output files, then runs `llm_tutorial.cli.main` as `python -m
llm_tutorial.cli` would (nothing has run in the server, so the child starts as fresh as
a new process, the way appendix F's warm worker starts the exercise checks). Exit
codes, output and
tracebacks are those of the real command. The tests that press Ctrl-C or kill a run
start real processes; with `bash run.sh test --slow` every command does
(LLM_TUTORIAL_SLOW=1)."""

import json, os, select, signal, subprocess, sys, tempfile
from pathlib import Path

SERVER = r"""
import atexit, gc, json, os, signal, sys
import torch  # noqa: F401 (what every command imports first)
import torch._dynamo  # noqa: F401 (what torch.optim's first step imports)
import llm_tutorial.cli

gc.freeze()  # the children's garbage collector leaves the server's objects alone


def exit_code(code) -> int:
    "What the interpreter makes of `sys.exit(code)`."
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def command(ask: dict):
    "In the child: become the command `ask`, run it, and exit."
    os.environ.clear()
    os.environ.update(ask["env"])
    os.chdir(ask["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(ask["out"], os.O_WRONLY | os.O_TRUNC), 1)
    os.dup2(os.open(ask["err"], os.O_WRONLY | os.O_TRUNC), 2)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [sys.argv[0], *ask["argv"]]
    try:  # as `python -m llm_tutorial.cli` ends: sys.exit(main())
        code = exit_code(llm_tutorial.cli.main(ask["argv"]))
    except SystemExit as e:
        code = exit_code(e.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())  # the traceback Python would print
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: 2 s of copied pages in a forked child


for line in sys.stdin:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        command(json.loads(line))
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class ForkRunner:
    "Runs `llm-tutorial ARGS` in a child of a server that has imported torch."

    def __init__(self, env: dict):
        self.env = env
        self.tmp = Path(tempfile.mkdtemp(prefix="forkrun-"))
        self._start()

    def _start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,  # its group: the server and its commands
        )

    def run(self, args: list[str], env: dict, timeout: float):
        "The command's CompletedProcess (exit code, stdout, stderr)."
        out, err = self.tmp / "out", self.tmp / "err"
        out.write_text("")
        err.write_text("")
        ask = dict(argv=args, env=env, cwd=os.getcwd(), out=str(out), err=str(err))
        self.proc.stdin.write(json.dumps(ask) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the command too
            self.proc.wait()
            self._start()  # a fresh server for the next command
            raise subprocess.TimeoutExpired(args, timeout)
        code = json.loads(self.proc.stdout.readline())
        stdout = out.read_text(errors="replace")
        stderr = err.read_text(errors="replace")
        return subprocess.CompletedProcess(args, code, stdout, stderr)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
