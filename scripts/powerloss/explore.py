#!/usr/bin/env python3
"""Power-loss crash-state explorer for quiver (ALICE/CrashMonkey style, from an strace log).

usage: explore.py RECDIR PRESET [max_states [model]]   (see README.md in this folder)
With a model (e.g. reorder), only its states are checked, into results-<model>.json.
RECDIR holds trace.txt (from record.sh) and data/ was the data root (pre-created empty).
"""
import sys, os, re, json, hashlib, subprocess, shutil, random, collections

REC = os.path.abspath(sys.argv[1]); PRESET = sys.argv[2]
MAXS = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
MODEL = sys.argv[4] if len(sys.argv) > 4 else None
OUT = '/results' + ('-' + MODEL if MODEL else '')
ROOT = REC + '/data'
Q = os.environ.get('QUIVER_BIN', 'target/release/quiver')
WORK = os.environ.get('POWERLOSS_DIR', '/tmp/quiver-powerloss')
SCR = WORK + '/scratch'
REORDER_SAMPLES = 4  # random samples per torn file, block size and state point
INPUT = [json.loads(l) for l in open(os.environ.get('POWERLOSS_INPUT', WORK + '/input.jsonl'))]

# ---------------- trace parsing ----------------
LINE = re.compile(r'^(\d+)\s+\S+\s+(.*)$')

def merged_lines(path):
    pend = {}
    for raw in open(path, encoding='latin1'):
        raw = raw.rstrip('\n')
        m = LINE.match(raw)
        if not m:
            continue
        pid, rest = m.group(1), m.group(2)
        if rest.endswith('<unfinished ...>'):
            pend[pid] = rest[:-len('<unfinished ...>')].rstrip()
            continue
        mm = re.match(r'^<\.\.\. (\w+) resumed>(.*)$', rest)
        if mm:
            rest = pend.pop(pid, '') + mm.group(2)
        if rest.startswith('+++') or rest.startswith('---'):
            continue
        yield pid, rest

def split_args(s):
    args, depth, cur, i, inq = [], 0, '', 0, False
    while i < len(s):
        c = s[i]
        if inq:
            cur += c
            if c == '\\':
                cur += s[i + 1]; i += 1
            elif c == '"':
                inq = False
        elif c == '"':
            inq = True; cur += c
        elif c in '[{(':
            depth += 1; cur += c
        elif c in ']})':
            depth -= 1; cur += c
        elif c == ',' and depth == 0:
            args.append(cur.strip()); cur = ''
        else:
            cur += c
        i += 1
    if cur.strip():
        args.append(cur.strip())
    return args

def unq(a):
    """decode a -xx quoted string to bytes"""
    a = a.strip()
    if a.endswith('...'):
        a = a[:-3]
    assert a[0] == '"' and a[-1] == '"', a[:80]
    body = a[1:-1]
    out = bytearray(); i = 0
    while i < len(body):
        if body[i] == '\\':
            c = body[i + 1]
            if c == 'x':
                out.append(int(body[i + 2:i + 4], 16)); i += 4; continue
            out.append({'n': 10, 't': 9, 'r': 13, '"': 34, '\\': 92, '0': 0}[c]); i += 2; continue
        out.append(ord(body[i])); i += 1
    return bytes(out)

CALL = re.compile(r'^(\w+)\((.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(.*)$', re.S)

def parse(path):
    ops = []
    for pid, rest in merged_lines(path):
        m = CALL.match(rest)
        if not m:
            continue
        name, args, ret = m.group(1), m.group(2), m.group(3)
        if ret == '?':
            continue
        ret = int(ret, 0)
        if ret < 0:
            continue
        ops.append((name, split_args(args), ret, pid))
    return ops

# ---------------- file-system model ----------------
class Ino:
    n = 0
    def __init__(self, kind):
        Ino.n += 1; self.id = Ino.n; self.kind = kind
        self.data = bytearray(); self.base = b''; self.pend = []  # pend: (kind, off, bytes|size, forced)
        self.entries = {}; self.dentries = {}  # dirs: current / durable (as of last fsync)

class FS:
    def __init__(self):
        self.root = Ino('d')
        self.fds = {}   # fd -> [ino, path, flags, offset]
        self.nslog = []  # (dir ino, name, ino|None) in order
        self.committed = 0  # nslog index covered by the last fsync/fdatasync of anything (ext4 journal)
        self.inos = {self.root.id: self.root}
        self.pend_names = set()

    def lookup(self, path, parent=False):
        if not (path == ROOT or path.startswith(ROOT + '/')):
            return None
        parts = [p for p in path[len(ROOT):].split('/') if p]
        d = self.root
        if parent:
            for p in parts[:-1]:
                d = d.entries.get(p)
                if d is None: return None
            return d, parts[-1]
        for p in parts:
            d = d.entries.get(p) if d.kind == 'd' else None
            if d is None: return None
        return d

    def setname(self, d, name, ino):
        if ino is None:
            d.entries.pop(name, None)
        else:
            d.entries[name] = ino
        self.nslog.append((d, name, ino))

    def write(self, ino, off, data, forced):
        end = off + len(data)
        if len(ino.data) < off:
            ino.data.extend(b'\0' * (off - len(ino.data)))
        ino.data[off:end] = data
        ino.pend.append(('w', off, bytes(data), forced))

    def trunc(self, ino, size):
        if len(ino.data) > size:
            del ino.data[size:]
        else:
            ino.data.extend(b'\0' * (size - len(ino.data)))
        ino.pend.append(('t', size, None, False))

    def sync_file(self, ino):
        ino.base = bytes(ino.data); ino.pend = []
        self.committed = len(self.nslog)

    def sync_dir(self, ino):
        ino.dentries = dict(ino.entries)
        self.committed = len(self.nslog)

def build_content(ino, mode):
    """mode: 'none' (only forced pending), 'all', 'zeros' (sizes of all, data of none),
    ('prefix', j), ('reorder', unit, seed, inflight) (see reorder_content)"""
    if mode == 'all':
        return bytes(ino.data)
    if isinstance(mode, tuple) and mode[0] == 'reorder':
        return reorder_content(ino, *mode[1:])
    d = bytearray(ino.base)
    size_all = len(ino.data)
    for i, (k, a, b, forced) in enumerate(ino.pend):
        take = forced or (isinstance(mode, tuple) and i < mode[1])
        if not take:
            continue
        if k == 'w':
            if len(d) < a: d.extend(b'\0' * (a - len(d)))
            d[a:a + len(b)] = b
        else:
            if len(d) > a: del d[a:]
            else: d.extend(b'\0' * (a - len(d)))
    if mode == 'zeros' and len(d) < size_all:
        d.extend(b'\0' * (size_all - len(d)))
    return bytes(d)

def reorder_content(ino, unit, seed, inflight):
    """Sizes as after all writes; each unit-aligned block that a write not yet durable touched
    (one not forced, or with inflight the last one, forced or not: a cut during it) reads as
    one of its versions, picked at random: as before the first such write, or as after any of
    them (a page or sector reaches the disk whole, with what the cache held when written)."""
    rng = random.Random(seed)
    d = bytearray(ino.base)
    versions = {}  # block offset -> its successive contents
    for i, (k, a, b, forced) in enumerate(ino.pend):
        if k == 't':
            if len(d) > a: del d[a:]
            else: d.extend(b'\0' * (a - len(d)))
            versions = {blk: v for blk, v in versions.items() if blk + unit <= a}
            continue
        torn = not forced or (inflight and i == len(ino.pend) - 1)
        blocks = range(a // unit * unit, a + len(b), unit)
        for blk in blocks:
            if torn: versions.setdefault(blk, [bytes(d[blk:blk + unit])])
        if len(d) < a: d.extend(b'\0' * (a - len(d)))
        d[a:a + len(b)] = b
        for blk in blocks:
            if torn: versions[blk].append(bytes(d[blk:blk + unit]))
            else: versions.pop(blk, None)  # durable whole
    for blk, vs in versions.items():
        n = max(0, min(unit, len(d) - blk))
        d[blk:blk + n] = (rng.choice(vs) + bytes(unit))[:n]  # zeros past that version's end
    return bytes(d)

def materialize(fs, nsmode, datamode, special=None):
    """returns dict relpath -> bytes (files) / None (dirs)"""
    # namespace
    if nsmode == 'current':
        view = lambda d: d.entries
    elif nsmode == 'strict':
        view = lambda d: d.dentries
    else:  # ('prefix', j): replay nslog[:j] on the current entries by undoing the tail
        j = nsmode[1]
        # rebuild from scratch: replay all ns ops up to j
        tables = collections.defaultdict(dict)
        for (d, name, ino) in fs.nslog[:j]:
            if ino is None: tables[d.id].pop(name, None)
            else: tables[d.id][name] = ino
        view = lambda d: tables[d.id]
    out = {}
    def walk(d, rel, seen):
        for name, ino in view(d).items():
            p = rel + '/' + name if rel else name
            if ino.kind == 'd':
                if ino.id in seen: continue
                out[p] = None; walk(ino, p, seen | {ino.id})
            else:
                m = datamode
                if special and ino.id in special: m = special[ino.id]
                out[p] = build_content(ino, m)
    walk(fs.root, '', {fs.root.id})
    return out

def state_hash(st):
    h = hashlib.sha1()
    for p in sorted(st):
        h.update(p.encode() + b'\0'); h.update(b'D' if st[p] is None else hashlib.sha1(st[p]).digest())
    return h.hexdigest()

# ---------------- replay the trace, generating states ----------------
def resolve(fs, dirfd, p):
    p = p.decode('latin1')
    if p.startswith('/'):
        return os.path.normpath(p)
    if dirfd == 'AT_FDCWD':
        return os.path.normpath(os.path.join(WORK, p))
    f = fs.fds.get(int(dirfd))
    return os.path.normpath(os.path.join(f[1], p)) if f else None

def explore():
    ops = parse(REC + '/trace.txt')
    fs = FS()
    acked = 0
    states = {}  # hash -> (state, acked, desc)
    kinds = collections.Counter()
    def add(desc, st):
        h = state_hash(st)
        if h not in states:
            states[h] = (st, acked, desc)
    for k, (name, a, ret, pid) in enumerate(ops):
        interesting = True
        written = None  # the file op k wrote to
        if name in ('openat', 'open', 'creat'):
            if name == 'openat': dfd, p, fl = a[0], unq(a[1]), a[2]
            elif name == 'open': dfd, p, fl = 'AT_FDCWD', unq(a[0]), a[1]
            else: dfd, p, fl = 'AT_FDCWD', unq(a[0]), 'O_CREAT|O_WRONLY|O_TRUNC'
            path = resolve(fs, dfd, p)
            ino = fs.lookup(path) if path else None
            if path and ino is None and 'O_CREAT' in fl:
                r = fs.lookup(path, parent=True)
                if r:
                    ino = Ino('f'); fs.inos[ino.id] = ino; fs.setname(r[0], r[1], ino); kinds['create'] += 1
            if ino is not None and 'O_TRUNC' in fl and ino.kind == 'f' and len(ino.data):
                fs.trunc(ino, 0)
            fs.fds[ret] = [ino, path, fl, 0]
            interesting = ino is not None and 'O_CREAT' in fl
        elif name in ('write', 'pwrite64', 'writev', 'pwritev', 'pwritev2'):
            fd = int(a[0])
            if name in ('write', 'pwrite64'):
                data = unq(a[1])
            else:
                data = b''.join(unq(x) for x in re.findall(r'iov_base=("(?:[^"\\]|\\.)*")', a[1]))
            data = data[:ret]
            if fd == 1:
                for m in re.finditer(rb'"acked_through":(\d+)', data):
                    acked = max(acked, int(m.group(1)))
                kinds['ack'] += 1
            f = fs.fds.get(fd)
            if not f or f[0] is None or fd == 1:
                if fd != 1: continue
            else:
                ino, path, fl = f[0], f[1], f[2]
                if name.startswith('pwrite'):
                    off = int(a[-1]) if name == 'pwrite64' else int(a[3])
                else:
                    off = len(ino.data) if 'O_APPEND' in fl else f[3]
                    f[3] = off + ret
                forced = 'O_DSYNC' in fl or 'O_SYNC' in fl
                fs.write(ino, off, data, forced); written = ino
                kinds['dsync-write' if forced else 'write'] += 1
        elif name == 'lseek':
            f = fs.fds.get(int(a[0]))
            if f: f[3] = ret
            continue
        elif name in ('fsync', 'fdatasync'):
            f = fs.fds.get(int(a[0]))
            if not f or f[0] is None: continue
            if f[0].kind == 'd': fs.sync_dir(f[0]); kinds['dir-fsync'] += 1
            else: fs.sync_file(f[0]); kinds[name] += 1
        elif name in ('sync', 'syncfs'):
            for ino in fs.inos.values():
                if ino.kind == 'd': fs.sync_dir(ino)
                else: fs.sync_file(ino)
        elif name in ('ftruncate', 'truncate'):
            if name == 'ftruncate':
                f = fs.fds.get(int(a[0])); ino = f[0] if f else None
            else:
                ino = fs.lookup(resolve(fs, 'AT_FDCWD', unq(a[0])))
            if ino is None: continue
            fs.trunc(ino, int(a[1])); kinds['truncate'] += 1
        elif name == 'fallocate':
            f = fs.fds.get(int(a[0]))
            if not f or f[0] is None: continue
            if a[1] == '0':
                end = int(a[2]) + int(a[3])
                if end > len(f[0].data): fs.trunc(f[0], end)
            kinds['fallocate'] += 1
        elif name in ('rename', 'renameat', 'renameat2'):
            if name == 'rename': src, dst = resolve(fs, 'AT_FDCWD', unq(a[0])), resolve(fs, 'AT_FDCWD', unq(a[1]))
            else: src, dst = resolve(fs, a[0], unq(a[1])), resolve(fs, a[2], unq(a[3]))
            s = fs.lookup(src, parent=True); t = fs.lookup(dst, parent=True)
            if not s or not t: continue
            ino = s[0].entries.get(s[1])
            if ino is None: continue
            fs.setname(s[0], s[1], None); fs.setname(t[0], t[1], ino); kinds['rename'] += 1
            for f in fs.fds.values():
                if f[0] is ino: f[1] = dst
        elif name in ('unlink', 'unlinkat', 'rmdir'):
            p = resolve(fs, 'AT_FDCWD', unq(a[0])) if name != 'unlinkat' else resolve(fs, a[0], unq(a[1]))
            r = fs.lookup(p, parent=True) if p else None
            if not r or r[1] not in r[0].entries: continue
            fs.setname(r[0], r[1], None); kinds['unlink'] += 1
        elif name in ('mkdir', 'mkdirat'):
            p = resolve(fs, 'AT_FDCWD', unq(a[0])) if name == 'mkdir' else resolve(fs, a[0], unq(a[1]))
            r = fs.lookup(p, parent=True) if p else None
            if not r: continue
            ino = Ino('d'); fs.inos[ino.id] = ino; fs.setname(r[0], r[1], ino); kinds['mkdir'] += 1
        elif name in ('link', 'linkat', 'symlink', 'copy_file_range', 'sendfile', 'msync'):
            print('UNMODELLED', name, a[:3]); continue
        elif name == 'close':
            fs.fds.pop(int(a[0]), None); continue
        elif name in ('dup', 'dup2', 'dup3') or (name == 'fcntl' and 'F_DUPFD' in a[1]):
            f = fs.fds.get(int(a[0]))
            if f: fs.fds[ret] = f  # shared open file description
            continue
        else:
            continue
        if not interesting:
            continue
        # ---- crash states after op k ----
        dirty = [i for i in fs.inos.values() if i.kind == 'f' and any(not p[3] for p in i.pend)]
        add((k, 'strict', 'none'), materialize(fs, 'strict', 'none'))
        add((k, 'current', 'none'), materialize(fs, 'current', 'none'))
        add((k, 'current', 'zeros'), materialize(fs, 'current', 'zeros'))
        add((k, 'strict', 'all'), materialize(fs, 'strict', 'all'))
        add((k, 'strict', 'zeros'), materialize(fs, 'strict', 'zeros'))
        for ino in dirty:  # one file behind, everything else persisted
            add((k, 'current', 'all', ino.id, 'none'), materialize(fs, 'current', 'all', {ino.id: 'none'}))
            add((k, 'current', 'all', ino.id, 'zeros'), materialize(fs, 'current', 'all', {ino.id: 'zeros'}))
            n = len(ino.pend)
            if n > 1:
                j = random.randint(1, n - 1)
                add((k, 'current', 'all', ino.id, ('prefix', j)), materialize(fs, 'current', 'all', {ino.id: ('prefix', j)}))
        # reorder: one file's blocks (4 KiB pages, 512 B sectors) written since its last sync
        # each hold a random version; a forced (O_DSYNC) write just made counts (a cut during it)
        torn = set(dirty) | ({written} if written and written.pend[-1][3] else set())
        for ino in sorted(torn, key=lambda i: i.id):
            for unit in (4096, 512):
                for r in range(REORDER_SAMPLES):
                    m = ('reorder', unit, '%d-%d-%d-%d' % (k, ino.id, unit, r), ino is written)
                    add((k, 'current', 'all', ino.id, m), materialize(fs, 'current', 'all', {ino.id: m}))
        # ext4-like: journal commits metadata in order; some prefix beyond the last commit
        for j in range(fs.committed, len(fs.nslog) + 1):
            add((k, ('nsprefix', j), 'none'), materialize(fs, ('prefix', j), 'none'))
    return states, kinds, len(ops)

# ---------------- checking ----------------
def run(args, stdin=None):
    p = subprocess.run([Q] + args, input=stdin, capture_output=True, timeout=60,
                       env=dict(os.environ, RUST_BACKTRACE='0'))
    return p.returncode, p.stdout.decode('latin1'), p.stderr.decode('latin1')

def write_state(st, d):
    shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
    for p in sorted(st, key=lambda x: x.count('/')):
        full = os.path.join(d, p)
        if st[p] is None: os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            open(full, 'wb').write(st[p])

def check(st, acked):
    d = SCR + '/data'
    write_state(st, d)
    fails = []
    def note(tag, rc, out, err):
        if 'panicked' in err or 'panicked' in out: fails.append(('PANIC ' + tag, err.strip()[-400:]))
        elif rc != 0: fails.append((tag + ' rc=%d' % rc, (out.strip() + ' | ' + err.strip())[-500:]))
    rc, out, err = run(['verify', '--data', d]); note('verify', rc, out, err)
    if rc == 0 and '"ok":true' not in out: fails.append(('verify-not-ok', out[-300:]))
    rc, out, err = run(['stats', '--data', d]); note('stats', rc, out, err)
    rc, out, err = run(['scan', '--data', d]); note('scan', rc, out, err)
    if rc == 0 and PRESET != 'throughput':
        got = {}
        for l in out.splitlines():
            try: r = json.loads(l)
            except Exception: fails.append(('scan-bad-json', l[:200])); continue
            s = r['seq']
            if s < 1 or s > len(INPUT):
                fails.append(('scan-unknown-seq', l[:200])); continue
            exp = INPUT[s - 1]
            for f in ('id', 'timestamp', 'type', 'source', 'payload'):
                if r.get(f) != exp.get(f):
                    fails.append(('scan-mismatch', 'seq %d field %s' % (s, f))); break
            got[r['id']] = s
        # every id with an acked version: its newest acked version (or a later one) is present
        newest = {}
        for i in range(acked):
            newest[INPUT[i]['id']] = i + 1
        lost = [(i, s) for i, s in newest.items() if got.get(i, 0) < s]
        if lost:
            fails.append(('LOST-ACKED', 'acked_through=%d, %d ids lost/stale, e.g. %s' % (acked, len(lost), lost[:5])))
    rec = json.dumps({"id": 999999, "timestamp": 1, "payload": {"new": True}}) + '\n'
    p = subprocess.run([Q, 'ingest', '--data', d, '--preset', PRESET], input=rec.encode(), capture_output=True,
                       env=dict(os.environ, RUST_BACKTRACE='0'), timeout=60)
    note('ingest', p.returncode, p.stdout.decode('latin1'), p.stderr.decode('latin1'))
    if p.returncode == 0:
        rc, out, err = run(['verify', '--data', d]); note('verify2', rc, out, err)
        if rc == 0 and '"ok":true' not in out: fails.append(('verify2-not-ok', out[-300:]))
    return fails

if __name__ == '__main__':
    random.seed(7)
    states, kinds, nops = explore()
    print('ops parsed', nops, 'kinds', dict(kinds), 'unique states', len(states), flush=True)
    items = [x for x in states.items() if MODEL is None or MODEL in json.dumps(x[1][2])]
    print('states of the model', len(items), flush=True)
    if len(items) > MAXS:
        random.shuffle(items); items = items[:MAXS]
        items.sort(key=lambda x: x[1][2][0])
    res = collections.defaultdict(list)
    os.makedirs(REC + '/fail', exist_ok=True)
    for n, (h, (st, acked, desc)) in enumerate(items):
        fails = check(st, acked)
        for tag, msg in fails:
            key = tag.split(' rc=')[0] + ' :: ' + re.sub(r'\d+', 'N', msg)[:160]
            res[key].append((desc, acked, msg, h))
            if len(res[key]) <= 3:
                write_state(st, REC + '/fail/' + h)
        if n % 100 == 0:
            print('checked', n, 'distinct failures', len(res), flush=True)
    json.dump({k: [(d, a, h) for d, a, m, h in v] for k, v in res.items()}, open(REC + OUT + '_all.json', 'w'), default=str)
    out = {k: v[:5] + [('count', len(v))] for k, v in res.items()}
    json.dump(out, open(REC + OUT + '.json', 'w'), indent=1, default=str)
    print('CHECKED', len(items))
    for k, v in res.items():
        print('=== %d x %s' % (len(v), k))
        for desc, acked, msg, h in v[:2]:
            print('   ', desc, 'acked', acked, h, '\n     ', msg[:600])
