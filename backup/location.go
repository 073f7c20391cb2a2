package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Location is where a backup's files live: a local directory, or a
// prefix in an S3-compatible bucket. A file appears whole or not at all
// (a directory's through a rename after it is synced; an S3 object when
// its upload completes).
type Location interface {
	String() string
	// Names lists the files there (none for a directory that does not
	// exist yet).
	Names(ctx context.Context) ([]string, error)
	// Create starts a file, there once Close returns nil.
	Create(ctx context.Context, name string) (io.WriteCloser, error)
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	Remove(ctx context.Context, name string) error
}

// ParseLocation reads a backup's destination: a path, or
// s3://BUCKET/PREFIX with, as query parameters, endpoint=HOST:PORT
// (default s3.amazonaws.com), region=R, and insecure=1 for plain HTTP (a
// MinIO on the same host). Credentials come from the environment:
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN if set).
func ParseLocation(s string) (Location, error) {
	if !strings.Contains(s, "://") {
		if s == "" {
			return nil, errors.New("backup: no location")
		}
		return dirLocation{dir: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("backup: location %q: %w", s, err)
	}
	if u.Scheme != "s3" {
		return nil, fmt.Errorf("backup: location %q: only a directory or s3://BUCKET/PREFIX", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("backup: location %q names no bucket", s)
	}
	q := u.Query()
	for k := range q {
		if !slices.Contains([]string{"endpoint", "region", "insecure"}, k) {
			return nil, fmt.Errorf("backup: location %q: unknown parameter %q (endpoint, region, insecure)", s, k)
		}
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	cl, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewEnvAWS(),
		Secure:       q.Get("insecure") != "1",
		Region:       q.Get("region"),
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("backup: location %q: %w", s, err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &s3Location{cl: cl, bucket: u.Host, prefix: prefix, text: s}, nil
}

// dirLocation is a local directory.
type dirLocation struct{ dir string }

func (d dirLocation) String() string { return d.dir }

func (d dirLocation) Names(context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

// dirFile is a file written under a temporary name, synced, and renamed
// into place on Close.
type dirFile struct {
	*os.File
	dir, name string
}

func (d dirLocation) Create(_ context.Context, name string) (io.WriteCloser, error) {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(d.dir, name+".partial"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &dirFile{File: f, dir: d.dir, name: name}, nil
}

func (f *dirFile) Close() error {
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.File.Name(), filepath.Join(f.dir, f.name))
	}
	if err == nil {
		err = syncDir(f.dir)
	}
	if err != nil {
		_ = os.Remove(f.File.Name())
	}
	return err
}

// CloseWithError gives the file up: its temporary name goes.
func (f *dirFile) CloseWithError(error) error {
	_ = f.File.Close()
	return os.Remove(f.File.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (d dirLocation) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(d.dir, name))
}

func (d dirLocation) Remove(_ context.Context, name string) error {
	return os.Remove(filepath.Join(d.dir, name))
}

// s3Location is a prefix in a bucket.
type s3Location struct {
	cl             *minio.Client
	bucket, prefix string
	text           string
}

func (s *s3Location) String() string { return s.text }

func (s *s3Location) Names(ctx context.Context) ([]string, error) {
	var names []string
	for obj := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s: %w", s, obj.Err)
		}
		names = append(names, strings.TrimPrefix(obj.Key, s.prefix))
	}
	return names, nil
}

// s3Upload streams a file to the bucket as it is written (a multipart
// upload of unknown size); Close waits for the upload's outcome.
type s3Upload struct {
	*io.PipeWriter
	done chan error
}

func (s *s3Location) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	pr, pw := io.Pipe()
	up := &s3Upload{PipeWriter: pw, done: make(chan error, 1)}
	go func() {
		// No payload signature: the manifest's SHA-256 of every file is
		// what a restore checks, and the streaming signature's chunk
		// framing is not understood by every S3-compatible server.
		_, err := s.cl.PutObject(ctx, s.bucket, s.prefix+name, pr, -1,
			// Parts of 16 MiB: left to itself, an upload of unknown size
			// buffers parts sized for a 5 TiB object (over 500 MiB).
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true, PartSize: 16 << 20})
		pr.CloseWithError(err) // the writer, if the upload gave up
		up.done <- err
	}()
	return up, nil
}

func (u *s3Upload) Close() error {
	if err := u.PipeWriter.Close(); err != nil {
		return err
	}
	return <-u.done
}

func (s *s3Location) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	obj, err := s.cl.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, err
	}
	return obj, nil
}

func (s *s3Location) Remove(ctx context.Context, name string) error {
	return s.cl.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{})
}

// notFound says whether err is a missing file at either kind of location.
func notFound(err error) bool {
	return errors.Is(err, os.ErrNotExist) || minio.ToErrorResponse(err).Code == "NoSuchKey"
}
