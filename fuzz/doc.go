// Package fuzz will hold fuzz targets over the public surfaces (protocol
// decoding, command dispatch, SQL, codecs) with their corpora.
package fuzz
