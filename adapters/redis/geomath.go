package redis

import (
	"math"
	"math/big"
)

// Correctly rounded sin, cos and asin for the geo commands (geo.go).
// Redis computes distances with the platform C library's sin, cos and asin,
// whose last bit varies by library and version: measured on 300,000
// arguments in geo's ranges, glibc 2.36 (the redis-server the tests run)
// misrounds about 1 in 1000, Go's math package about 1 in 10, which shows
// in what GEOSEARCHSTORE ... STOREDIST stores. These evaluate in
// double-double arithmetic (about 106 bits) and round once: the nearest
// double, except within about 2^-100 of a tie.

// dd is an unevaluated sum hi + lo with |lo| <= ulp(hi)/2.
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

func ddAdd(a, b dd) dd {
	s := twoSum(a.hi, b.hi)
	t := twoSum(a.lo, b.lo)
	s = quickTwoSum(s.hi, s.lo+t.hi)
	return quickTwoSum(s.hi, s.lo+t.lo)
}

func ddNeg(a dd) dd { return dd{-a.hi, -a.lo} }

func ddMul(a, b dd) dd {
	p := twoProd(a.hi, b.hi)
	p.lo += a.hi*b.lo + a.lo*b.hi
	return quickTwoSum(p.hi, p.lo)
}

// ddConst rounds a big.Float to a double-double.
func ddConst(f *big.Float) dd {
	hi, _ := f.Float64()
	lo, _ := new(big.Float).SetPrec(256).Sub(f, big.NewFloat(hi)).Float64()
	return dd{hi, lo}
}

var (
	// geoPio2 is pi/2 as three doubles, for argument reduction.
	geoPio2 [3]float64
	// geoPio2DD is pi/2 as a double-double.
	geoPio2DD dd
	// geoInvFact[i] is 1/i!.
	geoInvFact [40]dd
)

func init() {
	// pi to 80 digits, more than the 3*53 bits used.
	pi, _, _ := big.ParseFloat("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899", 10, 400, big.ToNearestEven)
	rest := new(big.Float).SetPrec(400).Quo(pi, big.NewFloat(2))
	for i := range geoPio2 {
		geoPio2[i], _ = rest.Float64()
		rest.Sub(rest, big.NewFloat(geoPio2[i]))
	}
	geoPio2DD = dd{geoPio2[0], geoPio2[1]}
	f := new(big.Float).SetPrec(400).SetInt64(1)
	for i := range geoInvFact {
		if i > 0 {
			f.Mul(f, big.NewFloat(float64(i)))
		}
		geoInvFact[i] = ddConst(new(big.Float).SetPrec(400).Quo(big.NewFloat(1).SetPrec(400), f))
	}
}

// sinCosDD returns sin and cos of r, |r| <= pi/4 (Taylor series).
func sinCosDD(r dd) (sin, cos dd) {
	r2 := ddMul(r, r)
	// sin r = r (1 - r^2/3! + r^4/5! - ...), cos r = 1 - r^2/2! + ...
	s, c := dd{}, dd{}
	for k := 18; k >= 0; k-- {
		ts, tc := geoInvFact[2*k+1], geoInvFact[2*k]
		if k%2 == 1 {
			ts, tc = ddNeg(ts), ddNeg(tc)
		}
		s = ddAdd(ddMul(s, r2), ts)
		c = ddAdd(ddMul(c, r2), tc)
	}
	return ddMul(s, r), c
}

// reduce returns x - k*pi/2 with k = round(x/(pi/2)), and k mod 4.
func reduce(x float64) (dd, int) {
	k := math.RoundToEven(x / geoPio2[0])
	r := dd{x, 0}
	for _, p := range geoPio2 {
		r = ddAdd(r, ddNeg(twoProd(k, p)))
	}
	return r, int(int64(k) & 3)
}

// geoSin is sin(x), correctly rounded in all but the rarest cases.
func geoSin(x float64) float64 {
	if math.IsInf(x, 0) || x != x || math.Abs(x) > 1e9 {
		return math.Sin(x)
	}
	if x == 0 {
		return x
	}
	r, q := reduce(x)
	s, c := sinCosDD(r)
	switch q {
	case 0:
		return s.hi + s.lo
	case 1:
		return c.hi + c.lo
	case 2:
		return -(s.hi + s.lo)
	}
	return -(c.hi + c.lo)
}

// geoCos is cos(x), correctly rounded in all but the rarest cases.
func geoCos(x float64) float64 {
	if math.IsInf(x, 0) || x != x || math.Abs(x) > 1e9 {
		return math.Cos(x)
	}
	r, q := reduce(x)
	s, c := sinCosDD(r)
	switch q {
	case 0:
		return c.hi + c.lo
	case 1:
		return -(s.hi + s.lo)
	case 2:
		return -(c.hi + c.lo)
	}
	return s.hi + s.lo
}

// asinSmall is asin(w) for 0 <= w <= 0.5 + a little: two Newton steps on
// sin from Go's estimate, in double-double (cos w >= 0.86 here, so each
// step squares the error).
func asinSmall(w dd) dd {
	y := dd{math.Asin(w.hi), 0}
	for range 2 {
		s, c := sinCosDD(y)
		diff := ddAdd(w, ddNeg(s))
		y = ddAdd(y, dd{(diff.hi + diff.lo) / (c.hi + c.lo), 0})
	}
	return y
}

// geoAsin is asin(x), correctly rounded in all but the rarest cases.
func geoAsin(x float64) float64 {
	if x != x || x > 1 || x < -1 {
		return math.NaN()
	}
	if x < 0 {
		return -geoAsin(-x)
	}
	if x == 0 {
		return x
	}
	if x <= 0.5 {
		y := asinSmall(dd{x, 0})
		return y.hi + y.lo
	}
	// asin x = pi/2 - 2 asin(sqrt((1-x)/2)); 1-x and the halving are exact.
	t := (1 - x) / 2
	w := math.Sqrt(t)
	var wd dd
	if w != 0 {
		wd = quickTwoSum(w, math.FMA(-w, w, t)/(2*w))
	}
	y := asinSmall(wd)
	r := ddAdd(geoPio2DD, ddNeg(ddAdd(y, y)))
	return r.hi + r.lo
}
