#!/usr/bin/env python3
"""Every relative link in README.md and docs/*.md resolves: the file exists,
and an anchor (#…) names a heading of that file, slugged as GitHub does.
Prints each broken link as file:line: target and exits 1 if there is one.
Called by ci/lint.sh; run it from the repository's root."""
import pathlib
import re
import sys

LINK = re.compile(r"\]\(([^)\s]+)\)")  # link texts may span lines
FENCE = re.compile(r"^\s*(```|~~~)")


def lines_outside_code(path):
    fenced = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def slug(heading):
    # GitHub: lower case, drop punctuation (keep letters, digits, spaces,
    # hyphens, underscores), spaces to hyphens.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    seen = {}
    out = set()
    for _, line in lines_outside_code(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.add(base if k == 0 else f"{base}-{k}")
    return out


def main():
    root = pathlib.Path(".")
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    broken = []
    for md in files:
        for n, line in lines_outside_code(md):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                dest = (md.parent / file_part).resolve() if file_part else md.resolve()
                if not dest.exists():
                    broken.append(f"{md}:{n}: {target} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    broken.append(f"{md}:{n}: {target} (no such heading in {dest.name})")
    for b in broken:
        print(b)
    print(f"ci/doclinks.py: {len(files)} files, {len(broken)} broken links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
