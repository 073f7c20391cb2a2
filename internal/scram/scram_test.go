package scram

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// TestRFC7677Example runs the exchange of RFC 7677's section 3: the
// server's messages must be the RFC's, byte for byte.
func TestRFC7677Example(t *testing.T) {
	salt, _ := b64.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	v, err := derive("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	e, first, err := Start(v, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
	if err != nil || string(first) != "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" {
		t.Fatalf("server-first %q, %v", first, err)
	}
	final, err := e.Finish([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || string(final) != "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Fatalf("server-final %q, %v", final, err)
	}
	// A wrong proof, and a replayed final message.
	e, _, _ = Start(v, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
	if _, err := e.Finish([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")); !errors.Is(err, ErrAuth) {
		t.Fatalf("a wrong proof: %v", err)
	}
	if _, err := e.Finish([]byte("c=biws,r=x,p=x")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a second final message: %v", err)
	}
	for _, bad := range []string{"", "p=tls-server-end-point,,n=u,r=x", "n,a=admin,n=u,r=x", "n,,r=x", "n,,n=u"} {
		if _, _, err := Start(v, []byte(bad), "s"); !errors.Is(err, ErrProtocol) {
			t.Errorf("client-first %q: %v", bad, err)
		}
	}
}

// TestVerifierRoundTrip: a verifier reads back as written, and a new
// one's salt is random.
func TestVerifierRoundTrip(t *testing.T) {
	v, err := NewVerifier("secret", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseVerifier(v.String())
	if err != nil || got.Iterations != v.Iterations || !bytes.Equal(got.Salt, v.Salt) || !bytes.Equal(got.StoredKey, v.StoredKey) || !bytes.Equal(got.ServerKey, v.ServerKey) {
		t.Fatalf("ParseVerifier(%s) = %+v, %v", v, got, err)
	}
	w, _ := NewVerifier("secret", rand.Reader)
	if bytes.Equal(v.Salt, w.Salt) {
		t.Fatal("two verifiers share a salt")
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$x:abc$a:b", "SCRAM-SHA-256$4096:!!$a:b"} {
		if _, err := ParseVerifier(bad); err == nil {
			t.Errorf("ParseVerifier(%q) succeeded", bad)
		}
	}
}
