package server

// SetStorePageBytes sets where a page of the store is cut short, for the
// tests, and returns the function that restores it.
func SetStorePageBytes(n int) (restore func()) {
	old := storePageBytes
	storePageBytes = n
	return func() { storePageBytes = old }
}
