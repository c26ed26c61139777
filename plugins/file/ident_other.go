//go:build !unix

package file

import "os"

// identity returns "" where files have no inode: rotation is then detected
// by size only.
func identity(fi os.FileInfo) string { return "" }
