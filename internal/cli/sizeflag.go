package cli

import (
	"fmt"
	"math"
	"strconv"

	"github.com/flowscan/flowscan/internal/config"
)

// sizeFlag is a byte-size flag that takes what collect --rcvbuf takes:
// "4MiB", "512k", "2kb" or a plain number of bytes.
type sizeFlag int

func (s *sizeFlag) String() string {
	v := int64(*s)
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.size && v%u.size == 0 {
			return strconv.FormatInt(v/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

func (s *sizeFlag) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("%q: at most 2GiB", v)
	}
	*s = sizeFlag(n)
	return nil
}
