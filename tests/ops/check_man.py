#!/usr/bin/env python3
"""The manual pages document every option and configuration key.

Usage: check_man.py EBMD EBMD_TRAIN SOURCE_ROOT MAN_BUILD_DIR

The lists come from the sources of truth at test time, never from a copy:
  - ebmd's options from `ebmd --help`;
  - ebmd-train's commands from `ebmd-train --help`, and each command's
    options (and the defaults `train --help` prints in brackets) from
    `ebmd-train COMMAND --help`;
  - the configuration keys from the directive table under src/ and
    from config/ebmd.conf (its section headers, `key = ` and `# key = `
    lines), and their defaults from config/ebmd.conf's active lines.

Each option must be a definition term (a line starting with `*--opt*`) in
the right section of the scdoc source (docs/man/*.scd): ebmd's in OPTIONS,
each ebmd-train command's in the section named after the command, each key
in the section of its INI section; a stated default must match. And each
must appear in the page meson built (roff), so the build is checked too.
Prints one line per problem; exits 1 if there was any.
"""

import glob
import os
import re
import subprocess
import sys

EBMD, TRAIN, ROOT, MANDIR = sys.argv[1:5]
problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def run_help(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        problem("%s exited %d" % (" ".join(argv), r.returncode))
    return r.stdout


def help_options(text):
    """{option: description} from the indented option lines of a help."""
    opts = {}
    last = None
    for line in text.splitlines():
        m = re.match(r"^ {1,4}(-\S.*?)(?: {2,}(.*)|$)", line)
        if m:
            names = re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", m.group(1))
            last = names
            for n in names:
                opts[n] = m.group(2) or ""
            continue
        if last and re.match(r"^ {6,}\S", line):
            for n in last:
                opts[n] += " " + line.strip()
        else:
            last = None
    return opts


def scd_sections(path):
    """{section title: [(term names, paragraph text)]} of an scdoc page."""
    sections = {}
    cur = None
    lines = open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("# "):
            cur = sections.setdefault(line[2:].strip(), [])
        elif cur is not None and line.startswith("*"):
            para = []
            j = i + 1
            while j < len(lines) and lines[j].startswith("\t"):
                para.append(lines[j].strip())
                j += 1
            terms = [t.split()[0] for t in re.findall(r"\*([^*]+)\*", line)
                     if t.strip()]
            cur.append((terms, " ".join(para)))
            i = j
            continue
        i += 1
    return sections


def roff_text(page):
    path = os.path.join(MANDIR, page)
    if not os.path.exists(path):
        problem("%s was not built (meson: docs/man)" % path)
        return ""
    # Font changes (\fB...\fR) out; roff may write '-' as '\-'.
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\f[BIRP]|\\&", "", text)
    return text.replace("\\-", "-")


def check_terms(page, section, want, defaults=None):
    """Every name in want is a term of `section` of page; defaults match."""
    scd = os.path.join(ROOT, "docs/man", page + ".scd")
    secs = scd_sections(scd)
    if section not in secs:
        problem("%s: no section '# %s'" % (scd, section))
        return
    terms = {}
    for names, para in secs[section]:
        for n in names:
            terms[n] = para
    roff = roff_text(page)
    for name in sorted(want):
        if name not in terms:
            problem("%s: section %s does not document %s" % (scd, section, name))
            continue
        if roff and not re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])",
                                  roff):
            problem("%s (built) does not mention %s" % (page, name))
        d = (defaults or {}).get(name)
        if d is not None:
            m = re.search(r"Default: \*([^*]*)\*", terms[name])
            if m is None:
                problem("%s: %s %s: no 'Default: *%s*'" % (scd, section, name, d))
            elif m.group(1) != d:
                problem("%s: %s %s: Default *%s*, but the source says %s"
                        % (scd, section, name, m.group(1), d))


# ---- ebmd(8) -----------------------------------------------------------------
ebmd_opts = help_options(run_help([EBMD, "--help"]))
if "--config" not in ebmd_opts:
    problem("could not read ebmd's options from ebmd --help: %r" % ebmd_opts)
check_terms("ebmd.8", "OPTIONS", ebmd_opts)
n_checked = len(ebmd_opts)

# ---- ebmd-train(1) -----------------------------------------------------------
top = run_help([TRAIN, "--help"])
commands = []
in_commands = False
for line in top.splitlines():
    if line.startswith("Commands:"):
        in_commands = True
        continue
    if in_commands:
        m = re.match(r"^  ([a-z][a-z-]*)  ", line)
        if m:
            commands.append(m.group(1))
        elif not line.strip():
            in_commands = False
if "train" not in commands:
    problem("could not read ebmd-train's commands: %r" % commands)
for cmd in commands:
    opts = help_options(run_help([TRAIN, cmd, "--help"]))
    # -h/--help is every command's; the page says so once.
    opts.pop("-h", None)
    opts.pop("--help", None)
    defaults = {}
    for name, desc in opts.items():
        m = re.search(r"\[([^\]]*)\]\s*$", desc)
        if m:
            defaults[name] = m.group(1)
    check_terms("ebmd-train.1", cmd.upper(), opts, defaults)
    n_checked += len(opts)
    if cmd == "train" and len(defaults) < 10:
        problem("train --help: only %d defaults in brackets?" % len(defaults))

# ---- ebmd.conf(5) ------------------------------------------------------------
keys = {}       # INI section ("server", "compose") -> set of keys
# Wherever the table lives under src/ (conf.c today; it may be split).
for src in glob.glob(os.path.join(ROOT, "src/**/*.[ch]"), recursive=True):
    text = open(src, encoding="utf-8").read()
    for sec, key in re.findall(r'\{\s*SEC_([A-Z]+)\s*,\s*"([a-z_]+)"', text):
        keys.setdefault(sec.lower(), set()).add(key)
if not keys.get("server"):
    problem("no directive table ({SEC_..., \"key\", ...}) found under src/")
conf_defaults = {}
sec = None
for line in open(os.path.join(ROOT, "config/ebmd.conf"), encoding="utf-8"):
    m = re.match(r"^#?\s*\[([a-z]+)(\.[^\]]*)?\]\s*$", line)
    if m:
        sec = m.group(1)
        keys.setdefault(sec, set())
        continue
    m = re.match(r"^(#\s*)?([a-z_]+) = (.*?)\s*$", line)
    if m and sec:
        keys[sec].add(m.group(2))
        if not m.group(1):
            conf_defaults[(sec, m.group(2))] = m.group(3)
for sec, names in sorted(keys.items()):
    title = "[compose.NAME]" if sec == "compose" else "[%s]" % sec
    d = {k: conf_defaults[(sec, k)] for k in names if (sec, k) in conf_defaults}
    check_terms("ebmd.conf.5", title, names, d)
    n_checked += len(names)

print("%d options and keys checked, %d problems" % (n_checked, len(problems)))
sys.exit(1 if problems else 0)
