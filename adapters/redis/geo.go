package redis

import (
	"math"
	"strconv"
	"strings"
)

// The geo commands (Redis's geo.c, geohash.c and geohash_helper.c): GEOADD,
// GEOPOS, GEODIST, GEOHASH, GEOSEARCH and GEOSEARCHSTORE. A geo set is a
// sorted set (zsets.go) whose scores are 52-bit geohashes: longitude and
// latitude, each as 26 bits of a fraction of its range, interleaved
// (latitude in the even bits). So ZADD, ZSCORE, ZRANGE and the rest work
// on it as in Redis, and any score decodes to some point, as in Redis (the
// C code converts the score to a uint64 as x86-64 does, and clamps).
//
// The arithmetic is Redis's, operation for operation, so that scores,
// coordinates and distances come out bit for bit the same; the products
// are wrapped in float64() so that no compiler fuses them into an FMA.

const (
	geoStepMax = 26 // GEO_STEP_MAX: 26*2 = 52 bits
	geoLatMin  = -85.05112878
	geoLatMax  = 85.05112878
	geoLongMin = -180
	geoLongMax = 180

	// geoEarthRadius is Redis's EARTH_RADIUS_IN_METERS.
	geoEarthRadius = 6372797.560856
	// geoMercatorMax is Redis's MERCATOR_MAX.
	geoMercatorMax = 20037726.37
)

// geoDegToRad is Redis's D_R, M_PI / 180.0 computed in double precision
// (not the exact constant Go would fold).
var geoDegToRad = func() float64 { pi := float64(math.Pi); return pi / 180 }()

func geoDegRad(a float64) float64 { return float64(a * geoDegToRad) }
func geoRadDeg(a float64) float64 { return a / geoDegToRad }

// geoHash is GeoHashBits: step bits of each coordinate, interleaved.
type geoHash struct {
	bits uint64
	step uint8
}

func (h geoHash) zero() bool { return h.bits == 0 && h.step == 0 }

type geoRange struct{ min, max float64 }

type geoArea struct{ lon, lat geoRange }

var (
	geoLongRange = geoRange{geoLongMin, geoLongMax}
	geoLatRange  = geoRange{geoLatMin, geoLatMax}
)

func interleave64(xlo, ylo uint32) uint64 {
	b := [...]uint64{0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF}
	s := [...]uint{1, 2, 4, 8, 16}
	x, y := uint64(xlo), uint64(ylo)
	for i := 4; i >= 0; i-- {
		x = (x | x<<s[i]) & b[i]
		y = (y | y<<s[i]) & b[i]
	}
	return x | y<<1
}

func deinterleave64(v uint64) uint64 {
	b := [...]uint64{0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF, 0x00000000FFFFFFFF}
	s := [...]uint{0, 1, 2, 4, 8, 16}
	x, y := v, v>>1
	for i := range b {
		x = (x | x>>s[i]) & b[i]
		y = (y | y>>s[i]) & b[i]
	}
	return x | y<<32
}

// geoEncode is geohashEncode.
func geoEncode(lonR, latR geoRange, lon, lat float64, step uint8) (geoHash, bool) {
	if step > 32 || step == 0 {
		return geoHash{}, false
	}
	if lon > geoLongMax || lon < geoLongMin || lat > geoLatMax || lat < geoLatMin {
		return geoHash{}, false
	}
	if lat < latR.min || lat > latR.max || lon < lonR.min || lon > lonR.max {
		return geoHash{step: step}, false
	}
	latOff := (lat - latR.min) / (latR.max - latR.min)
	lonOff := (lon - lonR.min) / (lonR.max - lonR.min)
	scale := float64(uint64(1) << step)
	latOff = float64(latOff * scale)
	lonOff = float64(lonOff * scale)
	return geoHash{bits: interleave64(uint32(latOff), uint32(lonOff)), step: step}, true
}

// geoDecode is geohashDecode. The uint32 sums wrap as in C.
func geoDecode(lonR, latR geoRange, h geoHash) (geoArea, bool) {
	if h.zero() {
		return geoArea{}, false
	}
	sep := deinterleave64(h.bits)
	latScale := latR.max - latR.min
	lonScale := lonR.max - lonR.min
	ilat, ilon := uint32(sep), uint32(sep>>32)
	div := float64(uint64(1) << h.step)
	var a geoArea
	a.lat.min = latR.min + float64(float64(ilat)/div*latScale)
	a.lat.max = latR.min + float64(float64(ilat+1)/div*latScale)
	a.lon.min = lonR.min + float64(float64(ilon)/div*lonScale)
	a.lon.max = lonR.min + float64(float64(ilon+1)/div*lonScale)
	return a, true
}

// cUint64 converts a double to uint64 as gcc's code does on x86-64 (the
// C conversion is undefined out of range): truncation, with cvttsd2si's
// 0x8000000000000000 for what int64 cannot hold.
func cUint64(f float64) uint64 {
	const two63 = 9223372036854775808.0
	cvt := func(f float64) uint64 {
		if f != f || f >= two63 || f < -two63 {
			return 1 << 63
		}
		return uint64(int64(f))
	}
	if f < two63 {
		return cvt(f)
	}
	return cvt(f-two63) ^ 1<<63
}

// geoDecodeScore is decodeGeohash: the center of the score's cell, clamped
// to the limits. It never fails.
func geoDecodeScore(score float64) (lon, lat float64) {
	a, _ := geoDecode(geoLongRange, geoLatRange, geoHash{bits: cUint64(score), step: geoStepMax})
	lon = (a.lon.min + a.lon.max) / 2
	lon = min(max(lon, geoLongMin), geoLongMax)
	lat = (a.lat.min + a.lat.max) / 2
	lat = min(max(lat, geoLatMin), geoLatMax)
	return lon, lat
}

// geoXBits and geoYBits are where an interleaved hash keeps its
// longitude and latitude bits.
const (
	geoXBits uint64 = 0xaaaaaaaaaaaaaaaa
	geoYBits uint64 = 0x5555555555555555
)

// geoMove moves h one cell along the axis whose bits are axis (geoXBits or
// geoYBits), by d's sign (geohash_move_x and geohash_move_y in one).
func geoMove(h *geoHash, d int, axis uint64) {
	moving, other := h.bits&axis, h.bits&^axis
	zz := ^axis >> (64 - uint(h.step)*2)
	if d > 0 {
		moving += zz + 1
	} else {
		moving |= zz
		moving -= zz + 1
	}
	moving &= axis >> (64 - uint(h.step)*2)
	h.bits = moving | other
}

// geoNeighbor is h moved by dx, dy cells (each -1, 0 or 1).
func geoNeighbor(h geoHash, dx, dy int) geoHash {
	if dx != 0 {
		geoMove(&h, dx, geoXBits)
	}
	if dy != 0 {
		geoMove(&h, dy, geoYBits)
	}
	return h
}

// geoLatDistance is geohashGetLatDistance.
func geoLatDistance(lat1, lat2 float64) float64 {
	return float64(geoEarthRadius * math.Abs(geoDegRad(lat2)-geoDegRad(lat1)))
}

// geoDistance is geohashGetDistance, the haversine distance in meters.
func geoDistance(lon1, lat1, lon2, lat2 float64) float64 {
	lon1r, lon2r := geoDegRad(lon1), geoDegRad(lon2)
	v := geoSin((lon2r - lon1r) / 2)
	if v == 0 {
		return geoLatDistance(lat1, lat2)
	}
	lat1r, lat2r := geoDegRad(lat1), geoDegRad(lat2)
	u := geoSin((lat2r - lat1r) / 2)
	a := float64(u*u) + float64(float64(float64(geoCos(lat1r)*geoCos(lat2r))*v)*v)
	return float64(2.0*geoEarthRadius) * geoAsin(math.Sqrt(a))
}

// geoShape is GeoShape: a circle (radius) or a box (width, height), in
// units of conversion meters, around xy.
type geoShape struct {
	box                   bool
	lon, lat              float64
	conversion            float64
	radius, width, height float64
}

// contains is geoWithinShape: whether the point of score lies in the
// shape, with its position and distance from the center.
func (s *geoShape) contains(score float64) (lon, lat, dist float64, ok bool) {
	lon, lat = geoDecodeScore(score)
	if !s.box {
		dist = geoDistance(s.lon, s.lat, lon, lat)
		return lon, lat, dist, !(dist > float64(s.radius*s.conversion))
	}
	w, h := float64(s.width*s.conversion), float64(s.height*s.conversion)
	if geoLatDistance(s.lat, lat) > h/2 {
		return lon, lat, 0, false
	}
	if geoDistance(lon, lat, s.lon, lat) > w/2 {
		return lon, lat, 0, false
	}
	return lon, lat, geoDistance(s.lon, s.lat, lon, lat), true
}

// geoStepsByRadius is geohashEstimateStepsByRadius.
func geoStepsByRadius(meters, lat float64) uint8 {
	if meters == 0 {
		return 26
	}
	step := 1
	for meters < geoMercatorMax {
		meters *= 2
		step++
	}
	step -= 2
	if lat > 66 || lat < -66 {
		step--
		if lat > 80 || lat < -80 {
			step--
		}
	}
	return uint8(min(max(step, 1), 26))
}

// boxes is geohashCalculateAreasByShapeWGS84 as membersOfAllNeighbors
// visits it: the center cell and its eight neighbours (north, south, east,
// west, north-east, north-west, south-east, south-west), zero for those
// the search excludes.
func (s *geoShape) boxes() [9]geoHash {
	// geohashBoundingBox.
	height := s.height / 2
	width := s.width / 2
	if !s.box {
		height, width = s.radius, s.radius
	}
	height = float64(s.conversion * height)
	width = float64(s.conversion * width)
	latDelta := geoRadDeg(height / geoEarthRadius)
	longDeltaTop := geoRadDeg(width / geoEarthRadius / geoCos(geoDegRad(s.lat+latDelta)))
	longDeltaBottom := geoRadDeg(width / geoEarthRadius / geoCos(geoDegRad(s.lat-latDelta)))
	minLon, maxLon := s.lon-longDeltaTop, s.lon+longDeltaTop
	if s.lat < 0 {
		minLon, maxLon = s.lon-longDeltaBottom, s.lon+longDeltaBottom
	}
	minLat, maxLat := s.lat-latDelta, s.lat+latDelta

	radius := s.radius
	if s.box {
		radius = math.Sqrt(float64(s.width/2*(s.width/2)) + float64(s.height/2*(s.height/2)))
	}
	radius = float64(radius * s.conversion)
	steps := geoStepsByRadius(radius, s.lat)

	hash, _ := geoEncode(geoLongRange, geoLatRange, s.lon, s.lat, steps)
	area, _ := geoDecode(geoLongRange, geoLatRange, hash)
	decode := func(dx, dy int) geoArea {
		a, _ := geoDecode(geoLongRange, geoLatRange, geoNeighbor(hash, dx, dy))
		return a
	}
	if steps > 1 && (decode(0, 1).lat.max < maxLat || decode(0, -1).lat.min > minLat ||
		decode(1, 0).lon.max < maxLon || decode(-1, 0).lon.min > minLon) {
		steps--
		hash, _ = geoEncode(geoLongRange, geoLatRange, s.lon, s.lat, steps)
		area, _ = geoDecode(geoLongRange, geoLatRange, hash)
	}
	n := [9]geoHash{hash, geoNeighbor(hash, 0, 1), geoNeighbor(hash, 0, -1), geoNeighbor(hash, 1, 0),
		geoNeighbor(hash, -1, 0), geoNeighbor(hash, 1, 1), geoNeighbor(hash, -1, 1), geoNeighbor(hash, 1, -1),
		geoNeighbor(hash, -1, -1)}
	const center, north, south, east, west, ne, nw, se, sw = 0, 1, 2, 3, 4, 5, 6, 7, 8
	if steps >= 2 {
		if area.lat.min < minLat {
			n[south], n[sw], n[se] = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lat.max > maxLat {
			n[north], n[ne], n[nw] = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lon.min < minLon {
			n[west], n[sw], n[nw] = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lon.max > maxLon {
			n[east], n[se], n[ne] = geoHash{}, geoHash{}, geoHash{}
		}
	}
	return n
}

// geoPoint is one search result.
type geoPoint struct {
	lon, lat, dist, score float64
	member                []byte
}

// geoCmpAsc is sort_gp_asc.
func geoCmpAsc(a, b *geoPoint) int {
	switch {
	case a.dist > b.dist:
		return 1
	case a.dist == b.dist:
		return 0
	}
	return -1
}

func geoCmpDesc(a, b *geoPoint) int { return -geoCmpAsc(a, b) }

// glibcMsort sorts as glibc's qsort does (a top-down merge sort, taking
// from the left run on ties), so that equal distances keep Redis's order.
func glibcMsort(p []geoPoint, cmp func(a, b *geoPoint) int) {
	tmp := make([]geoPoint, len(p))
	var sortRun func(b []geoPoint)
	sortRun = func(b []geoPoint) {
		n := len(b)
		if n <= 1 {
			return
		}
		n1 := n / 2
		sortRun(b[:n1])
		sortRun(b[n1:])
		i, j, k := 0, n1, 0
		for i < n1 && j < n {
			if cmp(&b[i], &b[j]) <= 0 {
				tmp[k] = b[i]
				i++
			} else {
				tmp[k] = b[j]
				j++
			}
			k++
		}
		k += copy(tmp[k:], b[i:n1])
		copy(b, tmp[:k])
	}
	sortRun(p)
}

// pqsort is Redis's pqsort.c: a quicksort (BSD's) that sorts only as much
// as it takes to put elements lrange..rrange in place.
func pqsort(a []geoPoint, cmp func(a, b *geoPoint) int, lrange, rrange int) {
	geoPQSort(a, 0, len(a), cmp, lrange, rrange)
}

func geoPQSort(a []geoPoint, base, n int, cmp func(a, b *geoPoint) int, lr, rr int) {
	swap := func(i, j int) { a[i], a[j] = a[j], a[i] }
	vecswap := func(i, j, n int) {
		for k := 0; k < n; k++ {
			swap(i+k, j+k)
		}
	}
	med3 := func(x, y, z int) int {
		if cmp(&a[x], &a[y]) < 0 {
			if cmp(&a[y], &a[z]) < 0 {
				return y
			} else if cmp(&a[x], &a[z]) < 0 {
				return z
			}
			return x
		}
		if cmp(&a[y], &a[z]) > 0 {
			return y
		} else if cmp(&a[x], &a[z]) < 0 {
			return x
		}
		return z
	}
	outside := func(l, r int) bool { return (lr < l && rr < l) || (lr > r && rr > r) }
	for {
		if n < 7 {
			for pm := base + 1; pm < base+n; pm++ {
				for pl := pm; pl > base && cmp(&a[pl-1], &a[pl]) > 0; pl-- {
					swap(pl, pl-1)
				}
			}
			return
		}
		pm := base + n/2
		if n > 7 {
			pl, pn := base, base+n-1
			if n > 40 {
				d := n / 8
				pl = med3(pl, pl+d, pl+2*d)
				pm = med3(pm-d, pm, pm+d)
				pn = med3(pn-2*d, pn-d, pn)
			}
			pm = med3(pl, pm, pn)
		}
		swap(base, pm)
		pa, pb := base+1, base+1
		pc, pd := base+n-1, base+n-1
		for {
			for pb <= pc {
				r := cmp(&a[pb], &a[base])
				if r > 0 {
					break
				}
				if r == 0 {
					swap(pa, pb)
					pa++
				}
				pb++
			}
			for pb <= pc {
				r := cmp(&a[pc], &a[base])
				if r < 0 {
					break
				}
				if r == 0 {
					swap(pc, pd)
					pd--
				}
				pc--
			}
			if pb > pc {
				break
			}
			swap(pb, pc)
			pb++
			pc--
		}
		pn := base + n
		r := min(pa-base, pb-pa)
		vecswap(base, pb-r, r)
		r = min(pd-pc, pn-pd-1)
		vecswap(pb, pn-r, r)
		if r = pb - pa; r > 1 && !outside(base, base+r-1) {
			geoPQSort(a, base, r, cmp, lr, rr)
		}
		r = pd - pc
		if r <= 1 {
			return
		}
		base, n = pn-r, r
		if outside(base, base+r-1) {
			return
		}
	}
}

// geoDistText is addReplyDoubleDistance's fixedpoint_d2string(d, 4):
// llrint(d*10000) as four decimals.
func geoDistText(d float64) []byte {
	if d == 0 {
		return []byte("0.0000")
	}
	f := math.RoundToEven(float64(d * 10000))
	v := int64(math.MinInt64) // x86's llrint of what int64 cannot hold
	if f >= -9223372036854775808.0 && f < 9223372036854775808.0 {
		v = int64(f)
	}
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
	if len(s) < 5 {
		s = strings.Repeat("0", 5-len(s)) + s
	}
	s = s[:len(s)-4] + "." + s[len(s)-4:]
	if neg {
		s = "-" + s
	}
	return []byte(s)
}

// geoCoord is a coordinate as addReplyHumanLongDouble replies it.
func geoCoord(f float64) Reply { return Reply{Kind: KindDouble, Float: f, HumanDouble: true} }

// humanDouble is ld2string's LD_STR_HUMAN of a double: "%.17Lf" without
// trailing zeros (or dot), "-0" as "0".
func humanDouble(f float64) string {
	if math.IsInf(f, 0) || f != f {
		return formatDouble(f)
	}
	s := strconv.FormatFloat(f, 'f', 17, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// geoUnit is extractUnitOrReply: meters per unit.
func geoUnit(u []byte) (float64, error) {
	switch {
	case eqFold(u, "m"):
		return 1, nil
	case eqFold(u, "km"):
		return 1000, nil
	case eqFold(u, "ft"):
		return 0.3048, nil
	case eqFold(u, "mi"):
		return 1609.34, nil
	}
	return 0, userError("ERR unsupported unit provided. please use M, KM, FT, MI")
}

// geoLonLat is extractLongLatOrReply.
func geoLonLat(lonArg, latArg []byte) (lon, lat float64, err error) {
	if lon, err = argFloat(lonArg); err != nil {
		return 0, 0, err
	}
	if lat, err = argFloat(latArg); err != nil {
		return 0, 0, err
	}
	if lon < geoLongMin || lon > geoLongMax || lat < geoLatMin || lat > geoLatMax {
		return 0, 0, userError("ERR invalid longitude,latitude pair " + cFloat(lon) + "," + cFloat(lat))
	}
	return lon, lat, nil
}

// cFloat is C's "%f".
func cFloat(f float64) string {
	if math.IsInf(f, 0) || f != f {
		return formatDouble(f)
	}
	return strconv.FormatFloat(f, 'f', 6, 64)
}

// argFloatMsg is getDoubleFromObjectOrReply with a message of its own.
func argFloatMsg(b []byte, msg string) (float64, error) {
	f, ok := parseFloat(b)
	if !ok {
		return 0, userError("ERR " + msg)
	}
	return f, nil
}

// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the
// positions' geohashes as scores, as Redis does it.
func cmdGeoAdd(c *ctx) (Reply, error) {
	xx, nx, i := false, false, 2
	for ; i < len(c.args); i++ {
		switch opt := c.args[i]; {
		case eqFold(opt, "nx"):
			nx = true
		case eqFold(opt, "xx"):
			xx = true
		case eqFold(opt, "ch"):
		default:
			goto parsed
		}
	}
parsed:
	if (len(c.args)-i)%3 != 0 || (xx && nx) {
		return Reply{}, errSyntax
	}
	args := append([][]byte{[]byte("zadd")}, c.args[1:i]...)
	for j := i; j < len(c.args); j += 3 {
		lon, lat, err := geoLonLat(c.args[j], c.args[j+1])
		if err != nil {
			return Reply{}, err
		}
		bits, _ := geoEncode(geoLongRange, geoLatRange, lon, lat, geoStepMax)
		args = append(args, strconv.AppendUint(nil, bits.bits, 10), c.args[j+2])
	}
	c.args = args
	return c.zaddGeneric(0)
}

// eachMember replies, for every member named from c.args[2] on, each(its
// position), or missing if the key has no such member (GEOPOS, GEOHASH).
func (c *ctx) eachMember(missing Reply, each func(lon, lat float64) Reply) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil {
		return Reply{}, err
	}
	out := make([]Reply, 0, len(c.args)-2)
	for _, m := range c.args[2:] {
		score, found, err := c.zscore(o, m)
		if err != nil {
			return Reply{}, err
		}
		if !found {
			out = append(out, missing)
			continue
		}
		out = append(out, each(geoDecodeScore(score)))
	}
	return Array(out...), nil
}

// GEOPOS key [member ...]
func cmdGeoPos(c *ctx) (Reply, error) {
	return c.eachMember(NullArray(), func(lon, lat float64) Reply { return Array(geoCoord(lon), geoCoord(lat)) })
}

// GEODIST key member1 member2 [M|KM|FT|MI]
func cmdGeoDist(c *ctx) (Reply, error) {
	toMeters := 1.0
	if len(c.args) == 5 {
		var err error
		if toMeters, err = geoUnit(c.args[4]); err != nil {
			return Reply{}, err
		}
	} else if len(c.args) > 5 {
		return Reply{}, errSyntax
	}
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil || !o.exists {
		return Null(), err
	}
	s1, found1, err := c.zscore(o, c.args[2])
	if err != nil || !found1 {
		return Null(), err
	}
	s2, found2, err := c.zscore(o, c.args[3])
	if err != nil || !found2 {
		return Null(), err
	}
	lon1, lat1 := geoDecodeScore(s1)
	lon2, lat2 := geoDecodeScore(s2)
	return Bulk(geoDistText(geoDistance(lon1, lat1, lon2, lat2) / toMeters)), nil
}

// GEOHASH key [member ...]: the standard 11-character geohash, re-encoded
// over latitudes -90..90 from the decoded position.
func cmdGeoHash(c *ctx) (Reply, error) {
	const alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
	return c.eachMember(Null(), func(lon, lat float64) Reply {
		h, _ := geoEncode(geoRange{-180, 180}, geoRange{-90, 90}, lon, lat, 26)
		buf := make([]byte, 11)
		for i := range buf {
			idx := 0
			if i < 10 {
				idx = int(h.bits>>(52-(i+1)*5)) & 0x1f
			}
			buf[i] = alphabet[idx]
		}
		return Bulk(buf)
	})
}

// georadiusGeneric's variants.
const (
	geoRadiusCoords = 1 << iota // GEORADIUS[_RO]: around longitude latitude
	geoRadiusMember             // GEORADIUSBYMEMBER[_RO]: around a member
	geoNoStore                  // the _RO variants: no STORE or STOREDIST
	geoSearchCmd                // GEOSEARCH's arguments
	geoSearchStore              // GEOSEARCHSTORE: the destination first
)

func cmdGeoSearch(c *ctx) (Reply, error)      { return c.geoSearch(1, geoSearchCmd) }
func cmdGeoSearchStore(c *ctx) (Reply, error) { return c.geoSearch(2, geoSearchCmd|geoSearchStore) }
func cmdGeoRadius(c *ctx) (Reply, error)      { return c.geoSearch(1, geoRadiusCoords) }
func cmdGeoRadiusByMember(c *ctx) (Reply, error) {
	return c.geoSearch(1, geoRadiusMember)
}
func cmdGeoRadiusRO(c *ctx) (Reply, error) { return c.geoSearch(1, geoRadiusCoords|geoNoStore) }
func cmdGeoRadiusByMemberRO(c *ctx) (Reply, error) {
	return c.geoSearch(1, geoRadiusMember|geoNoStore)
}

// geoDistanceArgs is extractDistanceOrReply: radius and unit.
func geoDistanceArgs(shape *geoShape, radius, unit []byte) error {
	r, err := argFloatMsg(radius, "need numeric radius")
	if err != nil {
		return err
	}
	if r < 0 {
		return userError("ERR radius cannot be negative")
	}
	shape.radius = r
	shape.conversion, err = geoUnit(unit)
	return err
}

// geoSearch is georadiusGeneric, in Redis's order of checks.
func (c *ctx) geoSearch(src int, flags int) (Reply, error) {
	o, err := c.lookupType(c.args[src], typeZSet)
	if err != nil {
		return Reply{}, err
	}
	var shape geoShape
	var storeKey []byte
	base := 2
	switch {
	case flags&geoRadiusCoords != 0:
		base = 6
		if shape.lon, shape.lat, err = geoLonLat(c.args[2], c.args[3]); err != nil {
			return Reply{}, err
		}
		if err := geoDistanceArgs(&shape, c.args[4], c.args[5]); err != nil {
			return Reply{}, err
		}
	case flags&geoRadiusMember != 0:
		base = 5
		if o.exists {
			score, found, err := c.zscore(o, c.args[2])
			if err != nil {
				return Reply{}, err
			}
			if !found {
				return Reply{}, userError("ERR could not decode requested zset member")
			}
			shape.lon, shape.lat = geoDecodeScore(score)
			if err := geoDistanceArgs(&shape, c.args[3], c.args[4]); err != nil {
				return Reply{}, err
			}
		}
	case flags&geoSearchStore != 0:
		base = 3
		storeKey = c.args[1]
	}
	search, store := flags&geoSearchCmd != 0, flags&geoSearchStore != 0
	var withDist, withHash, withCoord, fromMember, fromLoc, byRadius, byBox, any, storeDist bool
	sort := 0 // 0 none, 1 ascending, 2 descending
	var count int64
	args := c.args[base:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		rest := len(args) - i - 1
		switch {
		case eqFold(a, "withdist"):
			withDist = true
		case eqFold(a, "withhash"):
			withHash = true
		case eqFold(a, "withcoord"):
			withCoord = true
		case eqFold(a, "any"):
			any = true
		case eqFold(a, "asc"):
			sort = 1
		case eqFold(a, "desc"):
			sort = 2
		case eqFold(a, "count") && rest >= 1:
			n, err := argInt(args[i+1])
			if err != nil {
				return Reply{}, err
			}
			if n <= 0 {
				return Reply{}, userError("ERR COUNT must be > 0")
			}
			count = n
			i++
		case (eqFold(a, "store") || eqFold(a, "storedist")) && rest >= 1 && flags&(geoNoStore|geoSearchCmd) == 0:
			storeKey, storeDist = args[i+1], eqFold(a, "storedist")
			i++
		case eqFold(a, "storedist") && store:
			storeDist = true
		case eqFold(a, "frommember") && rest >= 1 && search && !fromLoc:
			if o.exists {
				score, found, err := c.zscore(o, args[i+1])
				if err != nil {
					return Reply{}, err
				}
				if !found {
					return Reply{}, userError("ERR could not decode requested zset member")
				}
				shape.lon, shape.lat = geoDecodeScore(score)
			}
			fromMember = true
			i++
		case eqFold(a, "fromlonlat") && rest >= 2 && search && !fromMember:
			if shape.lon, shape.lat, err = geoLonLat(args[i+1], args[i+2]); err != nil {
				return Reply{}, err
			}
			fromLoc = true
			i += 2
		case eqFold(a, "byradius") && rest >= 2 && search && !byBox:
			if err := geoDistanceArgs(&shape, args[i+1], args[i+2]); err != nil {
				return Reply{}, err
			}
			shape.box, byRadius = false, true
			i += 2
		case eqFold(a, "bybox") && rest >= 3 && search && !byRadius:
			w, err := argFloatMsg(args[i+1], "need numeric width")
			if err != nil {
				return Reply{}, err
			}
			h, err := argFloatMsg(args[i+2], "need numeric height")
			if err != nil {
				return Reply{}, err
			}
			if h < 0 || w < 0 {
				return Reply{}, userError("ERR height or width cannot be negative")
			}
			shape.width, shape.height = w, h
			if shape.conversion, err = geoUnit(args[i+3]); err != nil {
				return Reply{}, err
			}
			shape.box, byBox = true, true
			i += 3
		default:
			return Reply{}, errSyntax
		}
	}
	if storeKey != nil && (withDist || withHash || withCoord) {
		if store {
			return Reply{}, userError("ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
		}
		return Reply{}, userError("ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
	}
	if search && !fromMember && !fromLoc {
		return Reply{}, userError("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " + string(c.args[0]))
	}
	if search && !byRadius && !byBox {
		return Reply{}, userError("ERR exactly one of BYRADIUS and BYBOX can be specified for " + string(c.args[0]))
	}
	if any && count == 0 {
		return Reply{}, userError("ERR the ANY argument requires COUNT argument")
	}
	store = storeKey != nil
	if !o.exists {
		if store {
			dst, err := c.lookup(storeKey)
			if err != nil {
				return Reply{}, err
			}
			if dst.exists {
				if err := c.remove(dst); err != nil {
					return Reply{}, err
				}
				c.notify(NotifyGeneric, "del", dst.key)
			}
			return Int(0), nil
		}
		return Array(), nil
	}
	if count != 0 && sort == 0 && !any {
		sort = 1
	}
	limit := int64(0)
	if any {
		limit = count
	}
	points, err := c.geoMembersOfAllNeighbors(o, &shape, limit)
	if err != nil {
		return Reply{}, err
	}
	if len(points) == 0 && !store {
		return Array(), nil
	}
	returned := int64(len(points))
	if count != 0 && count < returned {
		returned = count
	}
	if sort != 0 {
		cmp := geoCmpAsc
		if sort == 2 {
			cmp = geoCmpDesc
		}
		if returned == int64(len(points)) {
			glibcMsort(points, cmp)
		} else {
			pqsort(points, cmp, 0, int(returned-1))
		}
	}
	points = points[:returned]
	for i := range points {
		points[i].dist /= shape.conversion
	}
	if store {
		dst, err := c.lookup(storeKey)
		if err != nil {
			return Reply{}, err
		}
		elems := make([]zent, len(points))
		for i, p := range points {
			elems[i] = zent{member: p.member, score: p.score}
			if storeDist {
				elems[i].score = p.dist
			}
		}
		event := "georadiusstore"
		if flags&geoSearchCmd != 0 {
			event = "geosearchstore"
		}
		return Int(returned), c.storeZSet(dst, elems, event)
	}
	out := make([]Reply, len(points))
	for i, p := range points {
		if !withDist && !withHash && !withCoord {
			out[i] = Bulk(p.member)
			continue
		}
		e := []Reply{Bulk(p.member)}
		if withDist {
			e = append(e, Bulk(geoDistText(p.dist)))
		}
		if withHash {
			e = append(e, Int(int64(p.score)))
		}
		if withCoord {
			e = append(e, Array(geoCoord(p.lon), geoCoord(p.lat)))
		}
		out[i] = Array(e...)
	}
	return Array(out...), nil
}

// geoMembersOfAllNeighbors is membersOfAllNeighbors: the members in the
// nine cells around the shape's center that lie in the shape, in the
// cells' order and score order within each, stopping at limit (if not 0).
func (c *ctx) geoMembersOfAllNeighbors(o *obj, shape *geoShape, limit int64) ([]geoPoint, error) {
	var out []geoPoint
	boxes := shape.boxes()
	last := -1
	for i, h := range boxes {
		if h.zero() {
			continue
		}
		if last >= 0 && h == boxes[last] {
			continue
		}
		if len(out) > 0 && limit > 0 && int64(len(out)) >= limit {
			break
		}
		// scoresOfGeoHashBox: min <= score < max.
		shift := 52 - uint(h.step)*2
		lo, hi := float64(h.bits<<shift), float64((h.bits+1)<<shift)
		err := c.each(scoreKey(o.rk, lo, nil), scoreKey(o.rk, hi, nil), func(kv KV) (bool, error) {
			e, err := decodeScoreKey(o, kv.Key)
			if err != nil {
				return false, err
			}
			if lon, lat, dist, ok := shape.contains(e.score); ok {
				out = append(out, geoPoint{lon: lon, lat: lat, dist: dist, score: e.score, member: e.member})
			}
			return !(len(out) > 0 && limit > 0 && int64(len(out)) >= limit), nil
		})
		if err != nil {
			return nil, err
		}
		last = i
	}
	return out, nil
}
