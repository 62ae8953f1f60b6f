"""Go mining: receivers, generics, struct types, closures and doc comments."""

from __future__ import annotations

from guardian.mining import extract_units, spec_for_path
from guardian.mining.core import Unit

GO = spec_for_path("server/server.go")

SERVER = """\
// Package server runs the HTTP API.
package server

import (
	"context"
	"net/http"
)

// Store persists items of any kind.
type Store[T any] struct {
	items map[string]T
}

type (
	// Options configure a Server.
	Options struct {
		Addr string
	}
	Handler func(http.ResponseWriter, *http.Request)
)

// Get returns the item stored under key.
// It reports whether the key was present.
func (s *Store[T]) Get(key string) (T, bool) {
	v, ok := s.items[key]
	return v, ok
}

func (s Store[T]) Len() int { return len(s.items) }

// Map applies f to every element of xs.
func Map[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

//go:noinline
func Serve(ctx context.Context, opts Options) error {
	mux := http.NewServeMux()
	health := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("/health", health)
	srv := &http.Server{Addr: opts.Addr, Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return srv.ListenAndServe()
}

var defaultHandler = func(w http.ResponseWriter, r *http.Request) {}
"""

EXPECTED = [
    ("class", "Store", 9, 12, "type Store[T any] struct", "Store persists items of any kind."),
    ("class", "Options", 15, 18, "type Options struct", "Options configure a Server."),
    (
        "method",
        "Store.Get",
        22,
        27,
        "func (s *Store[T]) Get(key string) (T, bool)",
        "Get returns the item stored under key.\nIt reports whether the key was present.",
    ),
    ("method", "Store.Len", 29, 29, "func (s Store[T]) Len() int", None),
    (
        "function",
        "Map",
        31,
        38,
        "func Map[T, U any](xs []T, f func(T) U) []U",
        "Map applies f to every element of xs.",
    ),
    ("function", "Serve", 40, 53, "func Serve(ctx context.Context, opts Options) error", None),
    (
        "function",
        "Serve.health",
        43,
        45,
        "health := func(w http.ResponseWriter, r *http.Request)",
        None,
    ),
    (
        "function",
        "defaultHandler",
        55,
        55,
        "var defaultHandler = func(w http.ResponseWriter, r *http.Request)",
        None,
    ),
]


def _table(units: list[Unit]) -> list[tuple[object, ...]]:
    return [(u.kind, u.qualname, u.start_line, u.end_line, u.signature, u.docstring) for u in units]


def test_go_units_match_exactly() -> None:
    assert GO is not None and GO.name == "go"
    warnings: list[str] = []
    assert _table(extract_units(SERVER.encode(), "server/server.go", GO, warnings)) == EXPECTED
    assert warnings == []


def test_code_keeps_doc_comment_and_directive() -> None:
    assert GO is not None
    units = {u.qualname: u for u in extract_units(SERVER.encode(), "server/server.go", GO)}
    get = units["Store.Get"].code.splitlines()
    assert get[0] == "// Get returns the item stored under key."
    assert get[2] == "func (s *Store[T]) Get(key string) (T, bool) {"
    assert units["Serve"].code.startswith("//go:noinline\nfunc Serve(")
    assert units["Serve.health"].code == (
        "health := func(w http.ResponseWriter, r *http.Request) {\n"
        "\tw.WriteHeader(http.StatusOK)\n"
        "}"
    )
    assert units["Options"].code.startswith("// Options configure a Server.\nOptions struct {")


BROKEN = """\
package p

func Good() int { return 1 }

func Bad( {
	return
}

func (t *T) After() string { return "x" }
"""


def test_syntax_error_keeps_the_other_units() -> None:
    assert GO is not None
    warnings: list[str] = []
    units = extract_units(BROKEN.encode(), "p/broken.go", GO, warnings)
    assert [(u.kind, u.qualname, u.start_line) for u in units] == [
        ("function", "Good", 3),
        ("method", "T.After", 9),
    ]
    assert warnings == ["p/broken.go:5: syntax error; kept 2 cleanly parsed units"]
