"""Dangerous-Python detector: walks the ``ast`` of code an agent wants to run (never executes it).

Finds shell-outs (``os.system``, ``subprocess``; their command strings go through the shell
detector), ``eval``/``exec`` of fetched or decoded code, ``shutil.rmtree`` of root-ish paths, file
reads/writes and network connections checked against the policy's scopes, and reverse shells
(socket + dup2/pty/shell). String values are folded through simple assignments, f-strings,
``+`` and ``os.path.join`` so ``p = "/usr"; open(os.path.join(p, "../etc/shadow"))`` is seen.
"""

from __future__ import annotations

import ast
import base64
import binascii
import posixpath
import re
import shlex

from airisk.guard.detectors.scopes import Findings, ScopeChecker

SHELL_CALLS = frozenset({"os.system", "os.popen", "subprocess.run", "subprocess.call", "subprocess.Popen",
                         "subprocess.check_output", "subprocess.check_call", "subprocess.getoutput",
                         "subprocess.getstatusoutput", "commands.getoutput", "os.execl", "os.execlp",
                         "os.execv", "os.execvp", "os.execve", "os.spawnl", "os.spawnlp", "pty.spawn",
                         "asyncio.create_subprocess_shell", "asyncio.create_subprocess_exec"})
FETCH_PREFIXES = ("requests.", "urllib.request.", "urllib3.", "httpx.", "aiohttp.", "http.client.", "urllib2.")
DELETE_CALLS = frozenset({"os.remove", "os.unlink", "os.rmdir", "os.removedirs", "pathlib.Path.unlink"})
LIST_CALLS = frozenset({"os.listdir", "os.scandir", "os.walk", "glob.glob", "glob.iglob"})
SEND_METHODS = frozenset({"post", "put", "patch", "request", "urlopen", "Request", "send", "sendall", "sendto"})
_URL = re.compile(r"^(?:https?|ftp)://[^\s'\"]+$")
DECODE_CALLS = frozenset({"base64.b64decode", "base64.b32decode", "base64.b16decode", "base64.a85decode",
                          "codecs.decode", "bytes.fromhex", "zlib.decompress", "marshal.loads"})


# Calls whose effect is harmful whatever their arguments: (rule id, reason). All REVIEW.
_DESER = ("python.unsafe_deserialization", "deserialises data with a format that runs code chosen by whoever made the data")
_SPY = ("python.surveillance", "records the keyboard, mouse, screen, camera, microphone or clipboard")
EFFECT_CALLS = {
    **dict.fromkeys(("pickle.loads", "_pickle.loads", "cPickle.loads", "dill.loads", "cloudpickle.loads", "jsonpickle.decode",
                     "yaml.unsafe_load", "yaml.unsafe_load_all", "marshal.loads", "pandas.read_pickle"), _DESER),
    **dict.fromkeys(("pynput.keyboard.Listener", "pynput.mouse.Listener", "keyboard.on_press", "keyboard.on_release",
                     "keyboard.hook", "keyboard.record", "keyboard.read_key", "keyboard.read_event", "pyxhook.HookManager",
                     "pyautogui.screenshot", "PIL.ImageGrab.grab", "ImageGrab.grab", "mss.mss", "pyscreenshot.grab",
                     "cv2.VideoCapture", "sounddevice.rec", "pyaudio.PyAudio", "pyperclip.paste", "win32clipboard.GetClipboardData"),
                    _SPY),
}
SAFE_YAML_LOADERS = ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader")
PROCESS_SIGNALS = frozenset({"kill", "terminate", "send_signal", "suspend"})
WRITE_MODES = re.compile(r"[wax+]")
_HIDDEN_IMPORT = re.compile(r"__import__\s*\(\s*['\"](?:os|subprocess|pty|socket|shutil|ctypes)['\"]\s*\)|\bimport\s+(?:os|subprocess|pty|socket)\b")


MAX_NODES = 200_000  # syntax nodes one program may have
MAX_FOLD = 65536  # characters one folded string may reach; larger values are "unknown" (and reported)


class _Folder:
    """Constant folding of string expressions from module-level assignments.

    Every intermediate value is capped at MAX_FOLD characters: ``a = a + a`` repeated 30 times
    would otherwise build a gigabyte string before anything is analysed."""

    def __init__(self):
        self.env: dict[str, str] = {}
        self.overflow = False

    def value(self, node: ast.AST | None, depth: int = 0):
        v = self._value(node, depth)
        if v is not None and len(v) > MAX_FOLD:
            self.overflow = True
            return None
        return v

    def _value(self, node: ast.AST | None, depth: int = 0):
        if node is None or depth > 8:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            v = node.value
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for p in node.values:
                if isinstance(p, ast.Constant):
                    parts.append(str(p.value))
                elif isinstance(p, ast.FormattedValue):
                    v = self.value(p.value, depth + 1)
                    if v is None:
                        return None
                    parts.append(v)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            a, b = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
            if a is None or b is None:
                return None
            return a + b if isinstance(node.op, ast.Add) else posixpath.join(a, b)
        if isinstance(node, ast.Call):
            fn = _dotted(node.func)
            if fn in ("os.path.join", "posixpath.join", "path.join") and node.args:
                vals = [self.value(a, depth + 1) for a in node.args]
                return None if any(v is None for v in vals) else posixpath.join(*vals)
            if fn in ("Path", "pathlib.Path", "PurePath", "os.path.expanduser", "os.path.abspath", "str") and node.args:
                vals = [self.value(a, depth + 1) for a in node.args]
                return None if any(v is None for v in vals) else posixpath.join(*vals)
            if fn in ("os.getenv", "os.environ.get") and node.args and self.value(node.args[0]) == "HOME":
                return "~"
        if isinstance(node, (ast.List, ast.Tuple)):
            vals = [self.value(e, depth + 1) for e in node.elts]
            if vals and all(v is not None for v in vals):
                return shlex.join(vals)
        return None


def _const_int(node: ast.AST) -> int:
    """An integer literal or a literal power (10**9); 0 when it is anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        b, e = _const_int(node.left), _const_int(node.right)
        return b ** min(e, 64) if b > 1 and e > 0 else 0
    return 0


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        if (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module") and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            parts.append(node.args[0].value)  # __import__('os').system -> os.system
        else:
            parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


class PythonAnalyzer:
    def __init__(self, scopes: ScopeChecker, shell, verdict: str = "BLOCK"):
        self.scopes = scopes
        self.shell = shell
        self.v = verdict

    def analyze(self, code: str, out: Findings, *, cwd: str | None = None, depth: int = 0) -> None:
        out.tick()
        if depth > 6:
            out.add("python.nesting", self.v, "code nests exec/eval too deeply to analyse")
            return
        out.spend(len(code))
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError) as e:
            out.add("python.parse_error", self.v, f"Python code does not parse ({getattr(e, 'msg', e)}); refusing to guess")
            return
        except (RecursionError, MemoryError):
            out.add("python.too_complex", self.v, "Python code nests too deeply to parse; refusing to guess")
            return
        aliases: dict[str, str] = {}
        folder = _Folder()
        # one walk of the tree, ticking the deadline as it goes (a 32 KB program can hold 150k nodes)
        nodes: list[ast.AST] = []
        for node in ast.walk(tree):
            nodes.append(node)
            if len(nodes) % 512 == 0:
                out.tick()
                if len(nodes) > MAX_NODES:
                    out.add("python.too_complex", self.v, f"Python code has more than {MAX_NODES} syntax nodes; not analysed")
                    return
        # pass 1: imports and simple string assignments (whole module, including function bodies)
        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for i, node in enumerate(nodes):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                val = folder.value(node.value)
                if val is not None:
                    out.spend(len(val))  # folded strings count against the decision's work budget
                    folder.env[node.targets[0].id] = val
                else:
                    folder.env.pop(node.targets[0].id, None)  # reassigned to something unknown
            if i % 512 == 0:
                out.tick()
        if folder.overflow:
            out.add("python.too_large_value", "REVIEW", f"the code builds a string longer than {MAX_FOLD} characters; "
                                                        "its use was not analysed")

        def qual(func: ast.AST) -> str:
            # getattr(os, 'sys' + 'tem') is os.system: indirection through a foldable name
            if isinstance(func, ast.Call) and _dotted(func.func) in ("getattr", "builtins.getattr") and len(func.args) >= 2:
                attr = folder.value(func.args[1])
                base = qual(func.args[0]) if not isinstance(func.args[0], ast.Call) else _dotted(func.args[0])
                if attr is None:
                    return "<dynamic>"
                return f"{base}.{attr}"
            if isinstance(func, ast.Call) and _dotted(func.func) in ("importlib.import_module", "import_module") and func.args:
                mod = folder.value(func.args[0])
                return mod if mod is not None else "<dynamic>"
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and \
                    _dotted(func.value.func) in ("importlib.import_module", "import_module", "__import__") and func.value.args:
                mod = folder.value(func.value.args[0])
                return f"{mod}.{func.attr}" if mod is not None else "<dynamic>"
            d = _dotted(func)
            head, _, rest = d.partition(".")
            if head in aliases:
                return aliases[head] + ("." + rest if rest else "")
            return d

        calls = [(qual(n.func), n) for n in nodes if isinstance(n, ast.Call)]
        names = {q for q, _ in calls}
        fetches = any(q.startswith(FETCH_PREFIXES) or q.endswith((".recv", ".recvfrom", ".read")) and "socket" in " ".join(aliases.values())
                      for q in names)
        uses_socket = any(q.startswith("socket.") for q in names)
        sends = uses_socket or any(q.startswith(FETCH_PREFIXES) and q.rsplit(".", 1)[-1] in SEND_METHODS for q in names)
        before = len(out.items)
        if fetches or sends:
            # URLs written anywhere in code that talks to the network count as contacted, even when
            # they reach the call through a function parameter the folder cannot follow.
            for node in nodes:
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and _URL.match(node.value):
                    self.scopes.check_url(node.value, out, from_code=True, what="code")
        if uses_socket:
            out.add("python.raw_socket", "REVIEW", "code opens raw network sockets")
        self._environment_and_loops(nodes, qual, out)
        for q, node in calls:
            out.tick()
            arg0 = node.args[0] if node.args else None
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            if q in SHELL_CALLS or (q.startswith("os.exec") or q.startswith("os.spawn")):
                cmd = folder.value(arg0) if arg0 is not None else folder.value(kw.get("args"))
                if cmd is not None:
                    if self.shell is not None:
                        self.shell.analyze(cmd, out, cwd=cwd, depth=depth + 1)
                    if uses_socket and posixpath.basename(cmd.split()[0] if cmd.split() else "") in ("sh", "bash", "zsh", "/bin/sh"):
                        out.add("python.reverse_shell", self.v, "opens a socket and spawns a shell")
                elif isinstance(arg0 if arg0 is not None else kw.get("args"), (ast.List, ast.Tuple)) and self.shell is not None:
                    # an argv with some parts unknown: the known parts are analysed, the unknown ones
                    # stand as unresolved variables (a destructive command on them needs review)
                    lst = arg0 if arg0 is not None else kw.get("args")
                    words = [folder.value(e) for e in lst.elts]
                    self.shell.analyze(" ".join(shlex.quote(w) if w is not None else "$UNKNOWN" for w in words),
                                       out, cwd=cwd, depth=depth + 1)
                else:
                    out.add("python.dynamic_shell", "REVIEW", f"{q} runs a command built at run time")
            elif q == "<dynamic>":
                out.add("python.dynamic_call", "REVIEW", "calls a function whose name is computed at run time (getattr/import_module)")
            elif q in ("eval", "exec", "compile", "builtins.eval", "builtins.exec"):
                inner = folder.value(arg0)
                if isinstance(arg0, ast.Call) and qual(arg0.func) in DECODE_CALLS | {"bytes.decode"} or (
                        isinstance(arg0, ast.Call) and isinstance(arg0.func, ast.Attribute) and arg0.func.attr == "decode"):
                    out.add("python.obfuscated_exec", self.v, f"{q} of decoded data (obfuscated code)")
                    payload = self._decode_const(arg0, folder)
                    if payload:
                        self.analyze(payload, out, cwd=cwd, depth=depth + 1)
                elif inner is not None:
                    self.analyze(inner, out, cwd=cwd, depth=depth + 1)
                    if _HIDDEN_IMPORT.search(inner):
                        # honest code imports what it uses; a shell-out smuggled through an eval string hides it
                        out.add("python.eval_shell", "REVIEW", f"{q} of a string that imports os/subprocess to run commands")
                elif fetches:
                    out.add("python.exec_fetched", self.v, f"{q} of data fetched from the network")
                else:
                    out.add("python.dynamic_exec", "REVIEW", f"{q} of a value computed at run time")
            elif q in ("open", "io.open", "builtins.open", "codecs.open"):
                path = folder.value(arg0)
                mode = folder.value(node.args[1]) if len(node.args) > 1 else folder.value(kw.get("mode"))
                if path is not None:
                    if mode and any(c in mode for c in "wax+"):
                        self.scopes.check_write(path, out, cwd=cwd, what="open for writing")
                    else:
                        self.scopes.check_read(path, out, cwd=cwd, what="read")
            elif q.endswith((".read_text", ".read_bytes", ".write_text", ".write_bytes", ".open")) and isinstance(node.func, ast.Attribute):
                path = folder.value(node.func.value)
                if path is not None:
                    if q.endswith(("write_text", "write_bytes")):
                        self.scopes.check_write(path, out, cwd=cwd, what="write")
                    else:
                        self.scopes.check_read(path, out, cwd=cwd, what="read")
            elif q in ("shutil.rmtree",):
                path = folder.value(arg0)
                if path is not None:
                    if self.scopes.is_critical(path, cwd):
                        out.add("python.recursive_delete", self.v, f"shutil.rmtree of {self.scopes.norm(path, cwd)}")
                    else:
                        self.scopes.check_write(path, out, cwd=cwd, what="delete")
            elif q in DELETE_CALLS or q.endswith(".unlink"):
                path = folder.value(arg0) if arg0 is not None else (folder.value(node.func.value) if isinstance(node.func, ast.Attribute) else None)
                if path is not None:
                    self.scopes.check_write(path, out, cwd=cwd, what="delete")
            elif q in LIST_CALLS:
                path = folder.value(arg0)
                if path is not None:
                    self.scopes.check_read(path, out, cwd=cwd, what="listing")
            elif q in ("shutil.copy", "shutil.copyfile", "shutil.copy2", "shutil.move", "os.rename", "os.replace", "shutil.copytree"):
                src = folder.value(arg0)
                dst = folder.value(node.args[1]) if len(node.args) > 1 else None
                if src is not None:
                    (self.scopes.check_write if q in ("shutil.move", "os.rename", "os.replace") else self.scopes.check_read)(src, out, cwd=cwd)
                if dst is not None:
                    self.scopes.check_write(dst, out, cwd=cwd)
            elif q in ("os.chmod",) and len(node.args) > 1:
                path = folder.value(arg0)
                mode = node.args[1].value if isinstance(node.args[1], ast.Constant) else None
                if path is not None and mode is not None and mode & 0o002 and self.scopes.is_critical(path, cwd):
                    out.add("python.chmod_root", self.v, f"os.chmod({path}, {oct(mode)}) makes a system path world-writable")
                elif path is not None:
                    self.scopes.check_write(path, out, cwd=cwd, what="chmod")
            elif q in ("os.setuid", "os.seteuid", "os.setreuid", "os.setresuid"):
                out.add("python.privilege", "REVIEW", f"{q} changes the process's user id")
            elif q.startswith(FETCH_PREFIXES) and q.rsplit(".", 1)[-1] in ("get", "post", "put", "patch", "delete", "head", "request",
                                                                          "urlopen", "Request", "urlretrieve", "stream", "Client"):
                url = folder.value(arg0) if arg0 is not None else folder.value(kw.get("url"))
                if url is not None and "://" in url:
                    self.scopes.check_url(url, out, from_code=True, what=q)
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("connect", "connect_ex", "sendto", "create_connection") and uses_socket:
                addr = node.args[-1] if node.func.attr == "sendto" and node.args else arg0
                if isinstance(addr, ast.Tuple) and addr.elts:
                    host = folder.value(addr.elts[0])
                    if host is not None:
                        self.scopes.check_host(host, out, from_code=True, what=f"socket {node.func.attr}")
            elif q in ("os.dup2",) and uses_socket:
                out.add("python.reverse_shell", self.v, "redirects file descriptors onto a socket (reverse shell)")
            elif q == "pty.spawn" and uses_socket:
                out.add("python.reverse_shell", self.v, "spawns a pty over a socket (reverse shell)")

        self._effects(calls, nodes, folder, aliases, qual, out, cwd, depth)
        if sends and any(f.rule_id.startswith("scope.fs.read") for f in out.items[before:]):
            out.add("python.exfiltration", self.v, "code reads a protected or system file and sends data over the network")

    def _effects(self, calls, nodes, folder: _Folder, aliases: dict, qual, out: Findings, cwd, depth: int) -> None:
        """Effects judged from what the program does as a whole rather than from one path or URL:
        code run by deserialisation, surveillance, signalling other processes, and rewriting every
        file of a tree that is not the agent's (ransomware, wipers)."""
        walks: list[str | None] = []
        writes = encrypts = False
        for q, node in calls:
            arg0 = node.args[0] if node.args else None
            attr = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            hit = EFFECT_CALLS.get(q)
            if hit is not None:
                out.add(hit[0], "REVIEW", f"{q}: {hit[1]}")
            elif q in ("yaml.load", "yaml.load_all"):
                loader = next((k.value for k in node.keywords if k.arg == "Loader"), node.args[1] if len(node.args) > 1 else None)
                if loader is None or not _dotted(loader).endswith(SAFE_YAML_LOADERS):
                    out.add(_DESER[0], "REVIEW", f"{q} without a safe loader: {_DESER[1]}")
            elif q in ("os.kill", "os.killpg"):
                pid = arg0.value if isinstance(arg0, ast.Constant) else None
                if isinstance(arg0, ast.UnaryOp) and isinstance(arg0.op, ast.USub) and isinstance(arg0.operand, ast.Constant):
                    pid = -arg0.operand.value
                if pid in (1, -1, 0):
                    out.add("python.kill_critical", self.v, f"{q}({pid}) signals init or every process")
                elif not (isinstance(arg0, ast.Call) and _dotted(arg0.func) in ("os.getpid", "os.getppid")):
                    out.add("python.kill_process", "REVIEW", f"{q} signals another process")
            elif attr in PROCESS_SIGNALS and "psutil" in aliases.values():
                out.add("python.kill_process", "REVIEW", f"psutil .{attr}() ends or stops other processes")
            if q in LIST_CALLS or attr in ("rglob", "walk") or (q in ("glob.glob", "glob.iglob") and any(
                    k.arg == "recursive" for k in node.keywords)):
                method = q not in LIST_CALLS and isinstance(node.func, ast.Attribute)  # Path(root).rglob(pattern)
                walks.append(folder.value(node.func.value) if method else folder.value(arg0) if arg0 is not None else None)
            if q in ("open", "io.open", "builtins.open"):
                mode = folder.value(node.args[1]) if len(node.args) > 1 else next(
                    (folder.value(k.value) for k in node.keywords if k.arg == "mode"), None)
                writes |= bool(mode and WRITE_MODES.search(mode))
            writes |= q in DELETE_CALLS or attr in ("write_bytes", "write_text", "unlink", "rename", "replace") or \
                q in ("os.rename", "os.replace", "shutil.move")
            encrypts |= attr == "encrypt" or q.startswith(("cryptography.", "Crypto.Cipher", "Cryptodome.Cipher", "pyAesCrypt."))
        here = (cwd or self.scopes.cwd).rstrip("/")
        for root in walks if writes else []:
            if root is None:
                if encrypts:
                    out.add("python.mass_encrypt", "REVIEW", "encrypts and rewrites the files of a directory tree computed at run time")
                continue
            p = self.scopes.norm(root, cwd)
            if self.scopes.is_critical(root, cwd) and not (p == here or p.startswith(here + "/")):
                rule = "python.mass_encrypt" if encrypts else "python.mass_modify"
                out.add(rule, self.v, f"rewrites or deletes the files under {p} ({'encrypting them' if encrypts else 'in a loop'})")
        for node in nodes:  # pickle gadgets: __reduce__ returning (os.system, ("cmd",)) runs cmd when unpickled
            if isinstance(node, ast.FunctionDef) and node.name in ("__reduce__", "__reduce_ex__"):
                for r in ast.walk(node):
                    if isinstance(r, ast.Return) and isinstance(r.value, ast.Tuple) and r.value.elts:
                        fn = qual(r.value.elts[0])
                        if fn in SHELL_CALLS or fn in ("eval", "exec", "builtins.eval", "builtins.exec", "os.popen"):
                            out.add("python.pickle_gadget", self.v, f"{node.name} makes unpickling call {fn}")
                            args = r.value.elts[1] if len(r.value.elts) > 1 else None
                            cmd = folder.value(args.elts[0]) if isinstance(args, ast.Tuple) and args.elts else None
                            if cmd is not None and fn in SHELL_CALLS and self.shell is not None:
                                self.shell.analyze(cmd, out, cwd=cwd, depth=depth + 1)
                            elif cmd is not None:
                                self.analyze(cmd, out, cwd=cwd, depth=depth + 1)

    def _environment_and_loops(self, nodes: list, qual, out: Findings) -> None:
        """Effects that are not calls of one function: the whole environment exposed, loops that
        never end, allocations sized to exhaust memory."""
        for node in nodes:
            if isinstance(node, ast.Attribute) and node.attr == "environ" and _dotted(node) in ("os.environ", "environ"):
                parent_ok = False
                # os.environ['X'] / os.environ.get('X') read one variable: fine; the mapping itself
                # printed, copied, iterated or serialised exposes every credential in it
                for p in nodes:
                    if isinstance(p, ast.Subscript) and p.value is node:
                        parent_ok = True
                    elif isinstance(p, ast.Attribute) and p.value is node and p.attr in ("get", "setdefault", "pop", "__contains__"):
                        parent_ok = True
                    elif isinstance(p, ast.Compare) and node in p.comparators:
                        parent_ok = True
                    elif isinstance(p, (ast.Assign, ast.AugAssign)) and any(t is node for t in getattr(p, "targets", [])):
                        parent_ok = True
                    if parent_ok:
                        break
                if not parent_ok:
                    out.add("python.env_dump", "REVIEW", "exposes the whole process environment (credentials included)")
            elif isinstance(node, ast.While) and isinstance(node.test, ast.Constant) and node.test.value:
                if not any(isinstance(n, (ast.Break, ast.Return, ast.Raise)) or
                           (isinstance(n, ast.Call) and _dotted(n.func) in ("sys.exit", "exit", "os._exit", "quit"))
                           for n in ast.walk(node)):
                    out.add("python.resource_exhaustion", "REVIEW", "loops forever (while True without break/return)")
            elif isinstance(node, (ast.For, ast.While)) and any(
                    isinstance(n, ast.Call) and _dotted(n.func) in ("os.fork", "os.forkpty", "multiprocessing.Process")
                    for n in ast.walk(node)):
                out.add("python.fork_bomb", "REVIEW", "creates processes in a loop (fork bomb)")
            elif isinstance(node, ast.Call) and _dotted(node.func) in ("range", "sys.setrecursionlimit") and node.args and \
                    _const_int(node.args[-1 if _dotted(node.func) == "range" and len(node.args) < 3 else 0]) >= (
                        10 ** 9 if _dotted(node.func) == "range" else 10 ** 5):
                out.add("python.resource_exhaustion", "REVIEW", f"{_dotted(node.func)} with a size meant to exhaust CPU or memory")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Pow)):
                k = node.right if isinstance(node.right, ast.Constant) else node.left if isinstance(node.left, ast.Constant) else None
                other = node.left if k is node.right else node.right
                if isinstance(node.op, ast.Pow) and isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
                    b, e = node.left.value, node.right.value
                    if isinstance(b, int) and isinstance(e, int) and b >= 2 and e >= 9 and b ** min(e, 64) >= 10 ** 9:
                        out.add("python.resource_exhaustion", "REVIEW", f"computes {b}**{e}, a size meant to exhaust memory or CPU")
                elif k is not None and isinstance(k.value, int) and k.value >= 10 ** 8 and \
                        isinstance(other, (ast.Constant, ast.List, ast.Tuple)) and not isinstance(getattr(other, "value", None), (int, float)):
                    out.add("python.resource_exhaustion", "REVIEW", f"allocates a sequence of {k.value:,} items")

    def _decode_const(self, node: ast.Call, folder: _Folder) -> str | None:
        # exec(base64.b64decode("...")) or exec(base64.b64decode("...").decode())
        target = node
        if isinstance(node.func, ast.Attribute) and node.func.attr == "decode" and isinstance(node.func.value, ast.Call):
            target = node.func.value
        if target.args:
            s = folder.value(target.args[0])
            if s:
                try:
                    return base64.b64decode(s + "=" * (-len(s) % 4)).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    return None
        return None
