package cluster

import (
	"errors"
	"fmt"
	"strings"
)

// CheckCredentialRefs reports every ${cred:NAME} in the config file raw
// (file names it) that this member cannot resolve - from DBUS_CRED_<NAME>
// or cc's credentials file - with its line (dbusd -t). Resource configs
// live in ZooKeeper and are checked by the member that runs them.
func CheckCredentialRefs(file string, raw []byte, cc *Config) error {
	creds, err := LoadCredentials(cc.CredentialsFile)
	if err != nil {
		return fmt.Errorf("%s: cluster: %w", file, err)
	}
	var errs []error
	seen := map[string]bool{}
	for i, line := range strings.Split(string(raw), "\n") {
		if j := strings.Index(line, "#"); j >= 0 && !strings.Contains(line[:j], "${cred:") {
			line = line[:j] // a comment (a '#' before any reference)
		}
		for _, m := range credRefRE.FindAllStringSubmatch(line, -1) {
			name := m[1]
			if _, err := creds.Lookup(name); err != nil && !seen[name] {
				seen[name] = true
				errs = append(errs, fmt.Errorf("%s:%d: %w", file, i+1, err))
			}
		}
	}
	return errors.Join(errs...)
}
