package redis

import "math/rand/v2"

// Random choices (SPOP, SRANDMEMBER, HRANDFIELD, RANDOMKEY) come from the
// seed the leader drew for the command, so a run replays the same.

// maxRandomSamples bounds the repetitions of a negative count (SRANDMEMBER
// key -N, HRANDFIELD key -N): Redis would build any size of reply; Orbit
// refuses beyond this many with "ERR value is out of range".
const maxRandomSamples = 1 << 16

func (c *ctx) rng() *rand.Rand {
	return rand.New(rand.NewPCG(c.rand, 0x6f72626974)) // "orbit"
}

// randomMember picks one element of a non-empty collection.
func (c *ctx) randomMember(o *obj) (KV, error) {
	all, err := c.members(o)
	if err != nil {
		return KV{}, err
	}
	if len(all) == 0 {
		return KV{}, corruptf("key %q exists with no elements", o.key)
	}
	return all[c.rng().IntN(len(all))], nil
}

// randomSample is the count form of SRANDMEMBER and HRANDFIELD: a negative
// count allows repeats, a positive one picks distinct elements (all of them
// if count >= size).
func (c *ctx) randomSample(o *obj, count int64) ([]KV, error) {
	if count == 0 {
		return nil, nil
	}
	if count < -maxRandomSamples {
		return nil, userError("ERR value is out of range")
	}
	all, err := c.members(o)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	r := c.rng()
	if count < 0 {
		out := make([]KV, -count)
		for i := range out {
			out[i] = all[r.IntN(len(all))]
		}
		return out, nil
	}
	if count >= int64(len(all)) {
		return all, nil
	}
	// A partial Fisher-Yates shuffle: the first count slots are the sample.
	for i := range int(count) {
		j := i + r.IntN(len(all)-i)
		all[i], all[j] = all[j], all[i]
	}
	return all[:count], nil
}
