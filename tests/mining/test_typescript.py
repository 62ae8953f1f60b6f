"""TypeScript and TSX mining: generics, decorators, abstract classes, overloads, namespaces, JSX."""

from __future__ import annotations

from guardian.mining import extract_units, languages, spec_for_path
from guardian.mining.core import Unit

TS = spec_for_path("src/repo.ts")
TSX = spec_for_path("src/Badge.tsx")

REPO = """\
import { Injectable } from "@angular/core";

export interface Entity {
  id: string;
  save(): Promise<void>;
}

/** A typed in-memory repository. */
@Injectable({ providedIn: "root" })
export class Repository<T extends Entity> {
  private readonly items = new Map<string, T>();

  constructor(private readonly name: string) {}

  /**
   * Find one item by id.
   */
  @Memoize()
  @Trace("find")
  find(id: string): T | undefined {
    return this.items.get(id);
  }

  public upsert = async (item: T): Promise<T> => {
    this.items.set(item.id, item);
    return item;
  };

  static create<U extends Entity>(name: string): Repository<U> {
    return new Repository<U>(name);
  }
}

export abstract class Shape {
  abstract area(): number;

  describe(): string {
    return `${this.constructor.name} with area ${this.area()}`;
  }
}

export function parse(input: string): number;
export function parse(input: number): number;
export function parse(input: string | number): number {
  return typeof input === "string" ? Number(input) : input;
}

export namespace Geometry {
  export const square = <N extends number>(side: N): number => side * side;
}

export const pick = <T, K extends keyof T>(obj: T, keys: K[]): Pick<T, K> =>
  Object.fromEntries(keys.map((k) => [k, obj[k]])) as Pick<T, K>;
"""

BADGE = """\
import React from "react";

type BadgeProps = { label: string; count?: number };

/** A small counter badge. */
export const Badge: React.FC<BadgeProps> = ({ label, count = 0 }) => {
  const text = count > 99 ? "99+" : String(count);
  return (
    <span className="badge" title={label}>
      {label}: <strong>{text}</strong>
    </span>
  );
};

export default function BadgeList({ items }: { items: BadgeProps[] }) {
  const renderItem = (item: BadgeProps) => <Badge key={item.label} {...item} />;
  return <ul>{items.map(renderItem)}</ul>;
}
"""

EXPECTED_TS = [
    (
        "class",
        "Repository",
        8,
        32,
        "class Repository<T extends Entity>",
        "A typed in-memory repository.",
    ),
    (
        "method",
        "Repository.constructor",
        13,
        13,
        "constructor(private readonly name: string)",
        None,
    ),
    (
        "method",
        "Repository.find",
        15,
        22,
        "find(id: string): T | undefined",
        "Find one item by id.",
    ),
    (
        "method",
        "Repository.upsert",
        24,
        27,
        "public upsert = async (item: T): Promise<T> =>",
        None,
    ),
    (
        "method",
        "Repository.create",
        29,
        31,
        "static create<U extends Entity>(name: string): Repository<U>",
        None,
    ),
    ("class", "Shape", 34, 40, "abstract class Shape", None),
    ("method", "Shape.describe", 37, 39, "describe(): string", None),
    ("function", "parse", 44, 46, "function parse(input: string | number): number", None),
    (
        "function",
        "Geometry.square",
        49,
        49,
        "const square = <N extends number>(side: N): number =>",
        None,
    ),
    (
        "function",
        "pick",
        52,
        53,
        "const pick = <T, K extends keyof T>(obj: T, keys: K[]): Pick<T, K> =>",
        None,
    ),
]

EXPECTED_TSX = [
    (
        "function",
        "Badge",
        5,
        13,
        "const Badge: React.FC<BadgeProps> = ({label, count = 0}) =>",
        "A small counter badge.",
    ),
    ("function", "BadgeList", 15, 18, "function BadgeList({items}: {items: BadgeProps[]})", None),
    ("function", "BadgeList.renderItem", 16, 16, "const renderItem = (item: BadgeProps) =>", None),
]


def _table(units: list[Unit]) -> list[tuple[object, ...]]:
    return [(u.kind, u.qualname, u.start_line, u.end_line, u.signature, u.docstring) for u in units]


def test_registry_has_both_dialects() -> None:
    assert TS is not None and TSX is not None
    assert TS.name == TSX.name == "typescript" and TS is not TSX
    assert languages()["typescript"] is TS
    assert spec_for_path("a.mts") is TS and spec_for_path("a.d.ts") is TS


def test_typescript_units_match_exactly() -> None:
    assert TS is not None
    warnings: list[str] = []
    assert _table(extract_units(REPO.encode(), "src/repo.ts", TS, warnings)) == EXPECTED_TS
    assert warnings == []


def test_decorators_and_doc_comments_are_in_the_code() -> None:
    assert TS is not None
    units = {u.qualname: u for u in extract_units(REPO.encode(), "src/repo.ts", TS)}
    find = units["Repository.find"].code.splitlines()
    assert find[:5] == ["/**", " * Find one item by id.", " */", "@Memoize()", '@Trace("find")']
    assert find[5:] == [
        "find(id: string): T | undefined {",
        "  return this.items.get(id);",
        "}",
    ]
    repo = units["Repository"].code.splitlines()
    assert repo[:3] == [
        "/** A typed in-memory repository. */",
        '@Injectable({ providedIn: "root" })',
        "export class Repository<T extends Entity> {",
    ]
    assert "abstract area" not in {u.qualname for u in units.values()}


def test_tsx_units_match_exactly() -> None:
    assert TSX is not None
    warnings: list[str] = []
    assert _table(extract_units(BADGE.encode(), "src/Badge.tsx", TSX, warnings)) == EXPECTED_TSX
    assert warnings == []


def test_tsx_grammar_is_needed_for_jsx() -> None:
    assert TS is not None and TSX is not None
    ts_warnings: list[str] = []
    extract_units(BADGE.encode(), "src/Badge.ts", TS, ts_warnings)
    assert ts_warnings, "the plain TypeScript grammar should reject JSX"
