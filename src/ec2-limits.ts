// What EC2 allows an instance-store AMI, in one place: bundle-image warns past it, doctor checks
// an image against it and bundle-vol sizes the image it makes within it.

/** EC2's limit for the root device of an instance-store AMI: 10 GiB. */
export const EC2_ROOT_LIMIT_BYTES = 10 * 2 ** 30;
/** The same limit in MiB, the unit bundle-vol sizes images in. */
export const EC2_ROOT_LIMIT_MIB = EC2_ROOT_LIMIT_BYTES / 2 ** 20;
