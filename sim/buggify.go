package sim

import (
	"fmt"
	"sort"
)

// buggify runs the perturbation points (FoundationDB's BUGGIFY): named places
// in components that, only in simulation, take a rarely exercised path.
// Whether a site is enabled in a run is a hash of (seed, site name), so adding
// a site never changes which others are on; an enabled site fires on a
// quarter of its evaluations.
type buggify struct {
	s       *Sim
	enabled bool
	sites   map[string]*buggifySite
}

type buggifySite struct {
	on               bool
	evaluated, fired uint64
}

// BuggifySiteChance is the share of sites enabled in a run, and
// BuggifyFireChance the share of an enabled site's evaluations that fire.
const (
	BuggifySiteChance = 0.25
	BuggifyFireChance = 0.25
)

func newBuggify(s *Sim) *buggify { return &buggify{s: s, sites: map[string]*buggifySite{}} }

func (b *buggify) fire(name string) bool {
	if !b.enabled {
		return false
	}
	st := b.sites[name]
	if st == nil {
		st = &buggifySite{on: unit(mix(b.s.seed, strHash(name), 0xb066)) < BuggifySiteChance}
		b.sites[name] = st
	}
	st.evaluated++
	if !st.on || b.s.rng.Float64() >= BuggifyFireChance {
		return false
	}
	st.fired++
	return true
}

// AlwaysBuggify enables site in every run whose perturbation points are
// on, whatever the seed's hash says: for a scenario whose checker needs
// the path the site takes (redistxn's backups, which catch a pinned scan
// that reads later pages live only if the range takes writes between
// pages). Call it before the site is first met.
func (s *Sim) AlwaysBuggify(site string) { s.buggify.sites[site] = &buggifySite{on: true} }

// EnableBuggify turns the perturbation points on for this run.
func (s *Sim) EnableBuggify(on bool) { s.buggify.enabled = on }

// BuggifyReport lists every site met so far, sorted, with its state.
func (s *Sim) BuggifyReport() []string {
	var out []string
	for name, st := range s.buggify.sites {
		out = append(out, fmt.Sprintf("%s: on=%v fired %d/%d", name, st.on, st.fired, st.evaluated))
	}
	sort.Strings(out)
	return out
}
