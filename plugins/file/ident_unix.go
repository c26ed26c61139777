//go:build unix

package file

import (
	"os"
	"strconv"
	"syscall"
)

// identity returns a file's stable identity "dev:inode", or "" when the
// platform has none.
func identity(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(uint64(st.Ino), 10)
}
