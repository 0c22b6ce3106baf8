// Package clickhouse is flowscan's scale-out store: a plain-HTTP client for
// ClickHouse, the schema (raw flows plus 1-minute, 5-minute and 1-hour
// consolidated tables, optionally behind Distributed tables over a
// cluster), the collector's sink that inserts flows in Native-format batches
// and spools them to local disk while the server is slow or down, and
// the read side used by `flowscan query` and the web UI.
//
// The client speaks only the HTTP interface (port 8123) because it is the
// one that behaves the same from Debian's 18.16 to current releases; no
// driver module is needed.
package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one ClickHouse server over HTTP.
type Client struct {
	// Base is the server's HTTP address, e.g. http://127.0.0.1:8123.
	base     *url.URL
	user     string
	password string
	// Database is the database flowscan's tables live in; statements
	// name it explicitly (it may not exist yet when the client is made).
	Database string
	http     *http.Client
}

// NewClient parses rawURL ("http://user:password@host:8123/database"; the
// path, if any, names the database, default "flowscan") and returns a
// client. It does not connect.
func NewClient(rawURL string) (*Client, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clickhouse URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("clickhouse URL %q: scheme must be http or https (the HTTP interface, port 8123 by default)", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("clickhouse URL %q: no host", rawURL)
	}
	if u.Port() == "" {
		if u.Scheme == "https" {
			u.Host += ":8443"
		} else {
			u.Host += ":8123"
		}
	}
	c := &Client{base: &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}, Database: "flowscan",
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if !validIdent(db) {
			return nil, fmt.Errorf("clickhouse URL %q: database name %q: use letters, digits and _", rawURL, db)
		}
		c.Database = db
	}
	return c, nil
}

// Addr returns the server's host:port, for messages.
func (c *Client) Addr() string { return c.base.Host }

// ServerError is an error answer of the server (an HTTP status other than
// 200): the statement reached the server and failed there.
type ServerError struct {
	Status int
	// Code is ClickHouse's numeric error code when the message has one.
	Code    int
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("clickhouse: HTTP %d: %s", e.Status, e.Message)
}

// do sends one statement. The query goes in the URL when body is set
// (INSERT ... FORMAT X with the data as body), in the body otherwise.
func (c *Client) do(ctx context.Context, query string, body io.Reader, settings map[string]string) (*http.Response, error) {
	q := url.Values{}
	for k, v := range settings {
		q.Set(k, v)
	}
	if body != nil {
		q.Set("query", query)
	} else {
		body = strings.NewReader(query)
	}
	u := *c.base
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.user != "" {
		req.Header.Set("X-ClickHouse-User", c.user)
		req.Header.Set("X-ClickHouse-Key", c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, parseServerError(resp.StatusCode, msg)
	}
	return resp, nil
}

func parseServerError(status int, msg []byte) *ServerError {
	e := &ServerError{Status: status, Message: strings.TrimSpace(string(msg))}
	// 18.16: "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = DB::Exception"
	// current: "Code: 60. DB::Exception: Table x does not exist. (UNKNOWN_TABLE) (version 23.8.1.1)"
	if rest, ok := strings.CutPrefix(e.Message, "Code: "); ok {
		if i := strings.IndexAny(rest, ",."); i > 0 {
			e.Code, _ = strconv.Atoi(rest[:i])
		}
	}
	return e
}

// Exec runs a statement that returns nothing of interest (DDL, ALTER).
func (c *Client) Exec(ctx context.Context, stmt string) error {
	resp, err := c.do(ctx, stmt, nil, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Query runs a SELECT and returns the whole answer (use a FORMAT clause).
func (c *Client) Query(ctx context.Context, sql string) ([]byte, error) {
	resp, err := c.do(ctx, sql, nil, map[string]string{"output_format_json_quote_64bit_integers": "0"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// QueryStream runs a SELECT and hands its answer to fn as a stream.
func (c *Client) QueryStream(ctx context.Context, sql string, fn func(r *bufio.Reader) error) error {
	resp, err := c.do(ctx, sql, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return fn(bufio.NewReaderSize(resp.Body, 1<<16))
}

// QueryRows runs a SELECT and returns its rows as tab-separated fields
// (FORMAT TabSeparated is appended), for small answers.
func (c *Client) QueryRows(ctx context.Context, sql string) ([][]string, error) {
	out, err := c.Query(ctx, sql+" FORMAT TabSeparated")
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows, nil
}

// Insert sends data (in format, e.g. "RowBinary") into table.
func (c *Client) Insert(ctx context.Context, table, columns, format string, data []byte) error {
	return c.InsertWithID(ctx, table, columns, format, data, "")
}

// InsertWithID is Insert with a query id (empty: the server makes one),
// by which the server's system.processes shows the INSERT while it runs,
// also after the client gave up on it.
func (c *Client) InsertWithID(ctx context.Context, table, columns, format string, data []byte, queryID string) error {
	stmt := "INSERT INTO " + table
	if columns != "" {
		stmt += " (" + columns + ")"
	}
	stmt += " FORMAT " + format
	var settings map[string]string
	if queryID != "" {
		settings = map[string]string{"query_id": queryID}
	}
	resp, err := c.do(ctx, stmt, bytes.NewReader(data), settings)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error {
	u := *c.base
	u.Path = "/ping"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("Ok.")) {
		return fmt.Errorf("clickhouse %s: /ping answered HTTP %d %q", c.base.Host, resp.StatusCode, b)
	}
	return nil
}

// Version is a server version, e.g. 18.16.1.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ParseVersion reads "18.16.1" or "23.8.2.7".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("clickhouse version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	var v Version
	var err error
	if v.Major, err = strconv.Atoi(parts[0]); err != nil {
		return Version{}, fmt.Errorf("clickhouse version %q: %w", s, err)
	}
	if v.Minor, err = strconv.Atoi(parts[1]); err != nil {
		return Version{}, fmt.Errorf("clickhouse version %q: %w", s, err)
	}
	if len(parts) > 2 {
		v.Patch, _ = strconv.Atoi(parts[2])
	}
	return v, nil
}

// ServerVersion asks the server for its version.
func (c *Client) ServerVersion(ctx context.Context) (Version, error) {
	out, err := c.Query(ctx, "SELECT version() FORMAT TabSeparated")
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(string(out))
}

// IsUncertain reports whether err leaves an INSERT's outcome unknown: the
// request may have reached the server and been applied although no answer
// came back (connection reset, timeout). A ServerError is certain: the
// server refused the statement.
func IsUncertain(err error) bool {
	var se *ServerError
	return err != nil && !errors.As(err, &se)
}

// validIdent reports whether s is a plain identifier (no quoting needed).
func validIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
