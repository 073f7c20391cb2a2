# Orbit's image: the orbit binary on distroless with glibc (the SQL
# parser, pg_query_go, is C built with cgo), running as the nonroot user
# (65532). deploy/k8s runs it as a StatefulSet; `docker build -t orbit .`
# makes it (the build needs the Go module proxy, as any Go build).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/orbit ./cmd/orbit

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/orbit /usr/local/bin/orbit
USER 65532:65532
EXPOSE 6379 5432 7000 9090 9190
ENTRYPOINT ["/usr/local/bin/orbit"]
CMD ["help"]
