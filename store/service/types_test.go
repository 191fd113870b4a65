package service_test

import (
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestTypesVersion: on a store node the version of a type moves with a
// write of it, before the write returns, and not with a write of another
// type; a node without the store role cannot tell (false).
func TestTypesVersion(t *testing.T) {
	a, b := thinPair(t, 40)
	ctx := t.Context()
	s := a.Store()
	if _, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("first")}); err != nil {
		t.Fatal(err)
	}
	notes, ok := s.TypesVersion(ctx, "exo.note")
	if !ok {
		t.Fatal("the store node cannot tell its index's version")
	}
	files, _ := s.TypesVersion(ctx, "x.files")
	if _, err := s.Put(ctx, store.EntityID{}, []store.Trait{note("second")}); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.TypesVersion(ctx, "exo.note"); !ok || v == notes {
		t.Errorf("after a note's write: version %d, %v; want other than %d, true", v, ok, notes)
	}
	if v, ok := s.TypesVersion(ctx, "x.files"); !ok || v != files {
		t.Errorf("after a note's write, another type's version: %d, %v; want %d, true", v, ok, files)
	}
	if _, ok := b.Store().TypesVersion(ctx, "exo.note"); ok {
		t.Error("a node without the store role tells a version")
	}
}
