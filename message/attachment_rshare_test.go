package message

import "testing"

// TestAttachmentNameC1Controls: Attachment.Name's doc says no control
// character; the C1 controls (U+0080 to U+009F: NEL, CSI, ...) are
// control characters as much as the C0 ones, and a name holding CSI
// writes terminal escapes where `exopeer files ls` prints it.
func TestAttachmentNameC1Controls(t *testing.T) {
	for _, name := range []string{"a\u0085b.txt", "x\u009b2Jy.txt", "\u0080"} {
		a := sampleFile()
		a.Name = name
		if err := a.Check(); err == nil {
			t.Errorf("name %q with a C1 control character accepted", name)
		}
	}
}
