package query

import (
	"fmt"
	"strings"
)

// SyntaxError is a filter error located at a column of the expression.
type SyntaxError struct {
	// Column is the 1-based byte column where the error was found.
	Column int
	// Msg says what was wrong.
	Msg string
	// Expr is the filter expression.
	Expr string
}

// Error returns the message with its column, the expression and a caret
// under the column.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter column %d: %s\n  %s\n  %s^", e.Column, e.Msg, e.Expr, strings.Repeat(" ", max(e.Column-1, 0)))
}

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokWord
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
	tokOp // comparison: = == != < <= > >=
	tokNot
	tokAnd
	tokOr
	tokComma
)

type token struct {
	kind tokenKind
	text string
	col  int // 1-based
}

func (t token) String() string {
	if t.kind == tokEOF {
		return "end of filter"
	}
	return fmt.Sprintf("%q", t.text)
}

// isWordByte reports whether c can be part of a word (names, numbers,
// addresses and prefixes, including IPv6 colons).
func isWordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '(', ')', '[', ']', '<', '>', '=', '!', '&', '|', ',':
		return false
	}
	return true
}

// lex splits expr into tokens; keywords are recognised by the parser.
func lex(expr string) ([]token, error) {
	var toks []token
	for i := 0; i < len(expr); {
		c := expr[i]
		col := i + 1
		two := ""
		if i+1 < len(expr) {
			two = expr[i : i+2]
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", col})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", col})
			i++
		case c == '[':
			toks = append(toks, token{tokLBracket, "[", col})
			i++
		case c == ']':
			toks = append(toks, token{tokRBracket, "]", col})
			i++
		case c == ',':
			toks = append(toks, token{tokComma, ",", col})
			i++
		case two == "&&":
			toks = append(toks, token{tokAnd, two, col})
			i += 2
		case two == "||":
			toks = append(toks, token{tokOr, two, col})
			i += 2
		case two == "==" || two == "!=" || two == "<=" || two == ">=":
			toks = append(toks, token{tokOp, two, col})
			i += 2
		case c == '=' || c == '<' || c == '>':
			toks = append(toks, token{tokOp, expr[i : i+1], col})
			i++
		case c == '!':
			toks = append(toks, token{tokNot, "!", col})
			i++
		case c == '&' || c == '|':
			return nil, &SyntaxError{Column: col, Msg: fmt.Sprintf("%q: use %q%q or and/or", c, c, c), Expr: expr}
		default:
			j := i
			for j < len(expr) && isWordByte(expr[j]) {
				j++
			}
			toks = append(toks, token{tokWord, expr[i:j], col})
			i = j
		}
	}
	return append(toks, token{kind: tokEOF, col: len(expr) + 1}), nil
}
