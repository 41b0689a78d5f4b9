// The EC2 Query actions the EBS work uses, on the test server: DescribeSnapshots, RegisterImage
// (EBS root from a snapshot), DescribeImages, EnableImageDeprecation and CreateTags. Requests are
// form-encoded (Action, Version=2016-11-15, flattened lists as Name.N), answers XML in the EC2
// namespace, errors with the codes EC2 documents (InvalidSnapshot.NotFound, InvalidAMIID.NotFound,
// InvalidAMIName.Duplicate, InvalidParameterValue, MissingParameter, InvalidBlockDeviceMapping, …).
import type http from 'node:http';
import { ApiError, sendEc2, xmlEscape } from './replies.js';
import type { Image, Snapshot, Store, Tag } from './store.js';

export const EC2_VERSION = '2016-11-15';
export const EC2_ACTIONS = [
  'DescribeSnapshots',
  'RegisterImage',
  'DescribeImages',
  'EnableImageDeprecation',
  'CreateTags',
];

const ARCHITECTURES = ['i386', 'x86_64', 'arm64', 'x86_64_mac', 'arm64_mac'];
const VOLUME_TYPES = ['standard', 'io1', 'io2', 'gp2', 'sc1', 'st1', 'gp3'];
const IMAGE_NAME = /^[a-zA-Z0-9()[\] ./\-'@_]{3,128}$/;

function param(msg: string): ApiError {
  return new ApiError(400, 'InvalidParameterValue', msg);
}

function missing(name: string): ApiError {
  return new ApiError(400, 'MissingParameter', `The request must contain the parameter ${name}`);
}

/** Values of a flattened list `Name.1`, `Name.2`, … in index order. */
function list(form: URLSearchParams, prefix: string): string[] {
  const out: [number, string][] = [];
  for (const [k, v] of form) {
    const m = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)$`).exec(k);
    if (m) out.push([Number(m[1]), v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

/** The indexes N present for structured list members `Name.N.*`. */
function indexes(form: URLSearchParams, prefix: string): number[] {
  const seen = new Set<number>();
  for (const k of form.keys()) {
    const m = new RegExp(`^${prefix}\\.(\\d+)\\.`).exec(k);
    if (m) seen.add(Number(m[1]));
  }
  return [...seen].sort((a, b) => a - b);
}

function bool(form: URLSearchParams, name: string): boolean | undefined {
  const v = form.get(name);
  if (v === null) return undefined;
  if (v !== 'true' && v !== 'false') throw param(`Invalid value '${v}' for ${name}: expected true or false.`);
  return v === 'true';
}

function int(form: URLSearchParams, name: string): number | undefined {
  const v = form.get(name);
  if (v === null) return undefined;
  if (!/^\d+$/.test(v)) throw param(`Invalid value '${v}' for ${name}: expected a whole number.`);
  return Number(v);
}

function filters(form: URLSearchParams): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of indexes(form, 'Filter')) {
    const name = form.get(`Filter.${n}.Name`);
    if (name === null) throw missing(`Filter.${n}.Name`);
    out.set(name, list(form, `Filter.${n}.Value`));
  }
  return out;
}

function tagsXml(tags: readonly Tag[]): string {
  if (!tags.length) return '';
  return `<tagSet>${tags.map((t) => `<item><key>${xmlEscape(t.Key)}</key><value>${xmlEscape(t.Value)}</value></item>`).join('')}</tagSet>`;
}

function el(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${xmlEscape(String(value))}</${name}>`;
}

function matchesTagFilters(tags: readonly Tag[], f: Map<string, string[]>): boolean {
  for (const [name, values] of f) {
    if (name.startsWith('tag:')) {
      const key = name.slice(4);
      if (!tags.some((t) => t.Key === key && values.includes(t.Value))) return false;
    } else if (name === 'tag-key') {
      if (!tags.some((t) => values.includes(t.Key))) return false;
    }
  }
  return true;
}

function snapshotXml(s: Snapshot): string {
  return (
    '<item>' +
    el('snapshotId', s.id) +
    el('volumeId', 'vol-ffffffff') +
    el('status', s.status) +
    el('statusMessage', s.statusMessage) +
    el('startTime', s.startTime.toISOString()) +
    el('progress', `${s.status === 'completed' ? 100 : s.progress}%`) +
    el('ownerId', s.ownerId) +
    el('volumeSize', s.volumeSize) +
    el('description', s.description ?? '') +
    el('encrypted', s.encrypted) +
    el('kmsKeyId', s.kmsKeyArn) +
    el('storageTier', 'standard') +
    tagsXml(s.tags) +
    '</item>'
  );
}

function describeSnapshots(store: Store, form: URLSearchParams, res: http.ServerResponse): void {
  const ids = list(form, 'SnapshotId');
  const owners = list(form, 'Owner');
  const f = filters(form);
  let found: Snapshot[];
  if (ids.length) {
    found = ids.map((id) => {
      const s = store.visible(id);
      if (!s) throw new ApiError(400, 'InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
      return s;
    });
  } else {
    found = [...store.snapshots.keys()]
      .map((id) => store.visible(id))
      .filter((s): s is Snapshot => s !== undefined);
  }
  if (owners.length) found = found.filter((s) => owners.includes('self') || owners.includes(s.ownerId));
  found = found.filter((s) => {
    for (const [name, values] of f) {
      if (name === 'snapshot-id' && !values.includes(s.id)) return false;
      if (name === 'status' && !values.includes(s.status)) return false;
      if (name === 'owner-id' && !values.includes(s.ownerId)) return false;
      if (name === 'description' && !values.includes(s.description ?? '')) return false;
    }
    return matchesTagFilters(s.tags, f);
  });
  sendEc2(res, 'DescribeSnapshots', `<snapshotSet>${found.map(snapshotXml).join('')}</snapshotSet>`);
}

function registerImage(store: Store, form: URLSearchParams, res: http.ServerResponse): void {
  const name = form.get('Name');
  if (name === null) throw missing('Name');
  if (!IMAGE_NAME.test(name))
    throw param(
      `Invalid value '${name}' for name. Must be between 3 and 128 characters long and may contain letters, numbers, '(', ')', '.', '-', '/', '_', ' ', '[', ']', '@' and "'".`,
    );
  if ([...store.images.values()].some((i) => i.name === name))
    throw new ApiError(
      400,
      'InvalidAMIName.Duplicate',
      `AMI name ${name} is already in use by an existing AMI`,
    );
  if (form.get('ImageLocation') !== null && indexes(form, 'BlockDeviceMapping').length)
    throw param('ImageLocation and an EBS root device cannot be given together.');
  const architecture = form.get('Architecture') ?? 'i386';
  if (!ARCHITECTURES.includes(architecture)) throw param(`Invalid value '${architecture}' for architecture.`);
  const virtualizationType = form.get('VirtualizationType') ?? 'paravirtual';
  if (virtualizationType !== 'hvm' && virtualizationType !== 'paravirtual')
    throw param(`Invalid value '${virtualizationType}' for virtualizationType.`);
  const bootMode = form.get('BootMode') ?? undefined;
  if (
    bootMode !== undefined &&
    bootMode !== 'legacy-bios' &&
    bootMode !== 'uefi' &&
    bootMode !== 'uefi-preferred'
  )
    throw param(`Invalid value '${bootMode}' for BootMode.`);
  if (bootMode !== undefined && virtualizationType !== 'hvm')
    throw param('BootMode requires HVM virtualization.');
  const imdsSupport = form.get('ImdsSupport') ?? undefined;
  if (imdsSupport !== undefined && imdsSupport !== 'v2.0')
    throw param(`Invalid value '${imdsSupport}' for ImdsSupport.`);
  const tpmSupport = form.get('TpmSupport') ?? undefined;
  if (tpmSupport !== undefined && tpmSupport !== 'v2.0')
    throw param(`Invalid value '${tpmSupport}' for TpmSupport.`);
  if (tpmSupport !== undefined && bootMode !== 'uefi') throw param('TpmSupport requires BootMode uefi.');
  const sriov = form.get('SriovNetSupport') ?? undefined;
  if (sriov !== undefined && sriov !== 'simple') throw param(`Invalid value '${sriov}' for SriovNetSupport.`);
  const enaSupport = bool(form, 'EnaSupport');
  if (enaSupport === true && virtualizationType !== 'hvm')
    throw param('ENA support requires HVM virtualization.');
  const rootDeviceName = form.get('RootDeviceName');
  if (rootDeviceName === null) throw missing('RootDeviceName');

  const mappings: Image['blockDeviceMappings'][number][] = [];
  const devices = new Set<string>();
  for (const n of indexes(form, 'BlockDeviceMapping')) {
    const p = `BlockDeviceMapping.${n}`;
    const deviceName = form.get(`${p}.DeviceName`);
    if (deviceName === null) throw missing(`${p}.DeviceName`);
    if (devices.has(deviceName))
      throw new ApiError(
        400,
        'InvalidBlockDeviceMapping',
        `The device '${deviceName}' is used in more than one block-device mapping`,
      );
    devices.add(deviceName);
    const virtualName = form.get(`${p}.VirtualName`);
    const noDevice = form.get(`${p}.NoDevice`);
    const hasEbs = [...form.keys()].some((k) => k.startsWith(`${p}.Ebs.`));
    if (!hasEbs) {
      mappings.push({
        deviceName,
        ...(virtualName !== null ? { virtualName } : {}),
        ...(noDevice !== null ? { noDevice: true } : {}),
      });
      continue;
    }
    const snapshotId = form.get(`${p}.Ebs.SnapshotId`) ?? undefined;
    let snapshot: Snapshot | undefined;
    if (snapshotId !== undefined) {
      snapshot = store.visible(snapshotId);
      if (!snapshot)
        throw new ApiError(400, 'InvalidSnapshot.NotFound', `The snapshot '${snapshotId}' does not exist.`);
      if (snapshot.status !== 'completed')
        throw new ApiError(
          400,
          'IncorrectState',
          `Snapshot '${snapshotId}' is ${snapshot.status}, not completed.`,
        );
    }
    const volumeType = form.get(`${p}.Ebs.VolumeType`) ?? 'gp2';
    if (!VOLUME_TYPES.includes(volumeType)) throw param(`Invalid value '${volumeType}' for volumeType.`);
    const volumeSize = int(form, `${p}.Ebs.VolumeSize`) ?? snapshot?.volumeSize;
    if (volumeSize === undefined)
      throw new ApiError(
        400,
        'InvalidBlockDeviceMapping',
        `The block device mapping for ${deviceName} needs a snapshot or a volume size.`,
      );
    if (snapshot && volumeSize < snapshot.volumeSize)
      throw new ApiError(
        400,
        'InvalidBlockDeviceMapping',
        `Volume of size ${volumeSize}GB is smaller than snapshot '${snapshot.id}', expect size>= ${snapshot.volumeSize}GB`,
      );
    const iops = int(form, `${p}.Ebs.Iops`);
    const throughput = int(form, `${p}.Ebs.Throughput`);
    const encryptedIn = bool(form, `${p}.Ebs.Encrypted`);
    if (snapshot && snapshot.encrypted && encryptedIn === false)
      throw param(`The snapshot '${snapshot.id}' is encrypted; its volume cannot be unencrypted.`);
    mappings.push({
      deviceName,
      ebs: {
        ...(snapshotId !== undefined ? { snapshotId } : {}),
        volumeSize,
        volumeType,
        deleteOnTermination: bool(form, `${p}.Ebs.DeleteOnTermination`) ?? true,
        encrypted: snapshot?.encrypted ?? encryptedIn ?? false,
        ...(iops !== undefined ? { iops } : {}),
        ...(throughput !== undefined ? { throughput } : {}),
      },
    });
  }
  const root = mappings.find((m) => m.deviceName === rootDeviceName);
  if (!root?.ebs?.snapshotId)
    throw new ApiError(
      400,
      'InvalidBlockDeviceMapping',
      `The root device ${rootDeviceName} needs a block-device mapping with an EBS snapshot.`,
    );

  const description = form.get('Description') ?? undefined;
  if (description !== undefined && description.length > 255)
    throw param('Description is at most 255 characters.');
  const image: Image = {
    id: store.newImageId(),
    name,
    description,
    architecture,
    rootDeviceName,
    virtualizationType,
    bootMode,
    enaSupport,
    sriovNetSupport: sriov,
    imdsSupport,
    tpmSupport,
    blockDeviceMappings: mappings,
    creationDate: new Date(),
    deprecationTime: undefined,
    tags: [],
  };
  store.images.set(image.id, image);
  sendEc2(res, 'RegisterImage', el('imageId', image.id));
}

function imageXml(store: Store, i: Image): string {
  const bdm = i.blockDeviceMappings
    .map(
      (m) =>
        '<item>' +
        el('deviceName', m.deviceName) +
        el('virtualName', m.virtualName) +
        (m.noDevice ? '<noDevice></noDevice>' : '') +
        (m.ebs
          ? '<ebs>' +
            el('snapshotId', m.ebs.snapshotId) +
            el('volumeSize', m.ebs.volumeSize) +
            el('deleteOnTermination', m.ebs.deleteOnTermination) +
            el('volumeType', m.ebs.volumeType) +
            el('iops', m.ebs.iops) +
            el('throughput', m.ebs.throughput) +
            el('encrypted', m.ebs.encrypted) +
            '</ebs>'
          : '') +
        '</item>',
    )
    .join('');
  return (
    '<item>' +
    el('imageId', i.id) +
    el('imageLocation', `${store.ownerId}/${i.name}`) +
    el('imageState', 'available') +
    el('imageOwnerId', store.ownerId) +
    el('creationDate', i.creationDate.toISOString()) +
    el('isPublic', false) +
    el('architecture', i.architecture) +
    el('imageType', 'machine') +
    el('platformDetails', 'Linux/UNIX') +
    el('usageOperation', 'RunInstances') +
    el('name', i.name) +
    el('description', i.description) +
    el('rootDeviceType', 'ebs') +
    el('rootDeviceName', i.rootDeviceName) +
    `<blockDeviceMapping>${bdm}</blockDeviceMapping>` +
    el('virtualizationType', i.virtualizationType) +
    el('hypervisor', 'xen') +
    el('enaSupport', i.enaSupport) +
    el('sriovNetSupport', i.sriovNetSupport) +
    el('bootMode', i.bootMode) +
    el('tpmSupport', i.tpmSupport) +
    el('imdsSupport', i.imdsSupport) +
    el('deprecationTime', i.deprecationTime?.toISOString().replace(/\.\d{3}Z$/, '.000Z')) +
    tagsXml(i.tags) +
    '</item>'
  );
}

function imageOf(store: Store, id: string): Image {
  if (!/^ami-[0-9a-f]+$/.test(id)) throw new ApiError(400, 'InvalidAMIID.Malformed', `Invalid id: "${id}"`);
  const i = store.images.get(id);
  if (!i) throw new ApiError(400, 'InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
  return i;
}

function describeImages(store: Store, form: URLSearchParams, res: http.ServerResponse): void {
  const ids = list(form, 'ImageId');
  const f = filters(form);
  let found = ids.length ? ids.map((id) => imageOf(store, id)) : [...store.images.values()];
  found = found.filter((i) => {
    for (const [name, values] of f) {
      if (name === 'name' && !values.includes(i.name)) return false;
      if (name === 'image-id' && !values.includes(i.id)) return false;
      if (name === 'architecture' && !values.includes(i.architecture)) return false;
    }
    return matchesTagFilters(i.tags, f);
  });
  sendEc2(res, 'DescribeImages', `<imagesSet>${found.map((i) => imageXml(store, i)).join('')}</imagesSet>`);
}

function enableImageDeprecation(store: Store, form: URLSearchParams, res: http.ServerResponse): void {
  const id = form.get('ImageId');
  if (id === null) throw missing('ImageId');
  const at = form.get('DeprecateAt');
  if (at === null) throw missing('DeprecateAt');
  const when = new Date(at);
  if (Number.isNaN(when.getTime())) throw param(`Invalid value '${at}' for DeprecateAt.`);
  if (when.getTime() > Date.now() + 10 * 366 * 24 * 3600 * 1000)
    throw param('The deprecation date cannot be more than 10 years in the future.');
  const image = imageOf(store, id);
  // EC2 keeps the time to the minute: seconds are rounded to the nearest minute.
  image.deprecationTime = new Date(Math.round(when.getTime() / 60000) * 60000);
  sendEc2(res, 'EnableImageDeprecation', el('return', true));
}

function createTags(store: Store, form: URLSearchParams, res: http.ServerResponse): void {
  const resources = list(form, 'ResourceId');
  if (!resources.length) throw missing('ResourceId');
  const tags: Tag[] = indexes(form, 'Tag').map((n) => {
    const key = form.get(`Tag.${n}.Key`);
    if (key === null || key === '') throw missing(`Tag.${n}.Key`);
    if (key.toLowerCase().startsWith('aws:')) throw param(`Tag keys starting with 'aws:' are reserved.`);
    return { Key: key, Value: form.get(`Tag.${n}.Value`) ?? '' };
  });
  if (!tags.length) throw missing('Tag');
  const targets = resources.map((id) => {
    if (id.startsWith('snap-')) {
      const s = store.visible(id);
      if (!s) throw new ApiError(400, 'InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
      return s;
    }
    if (id.startsWith('ami-')) return imageOf(store, id);
    throw new ApiError(400, 'InvalidID', `The ID '${id}' is not valid`);
  });
  for (const t of targets) {
    for (const tag of tags) {
      t.tags = t.tags.filter((x) => x.Key !== tag.Key);
      t.tags.push(tag);
    }
    if (t.tags.length > 50)
      throw new ApiError(400, 'TagLimitExceeded', 'A resource can have at most 50 tags.');
  }
  sendEc2(res, 'CreateTags', el('return', true));
}

/** Checks Version and dispatches; `action` was read from the form by the router. */
export function handleEc2(
  store: Store,
  action: string,
  form: URLSearchParams,
  res: http.ServerResponse,
): void {
  const version = form.get('Version');
  if (version === null) throw missing('Version');
  if (version !== EC2_VERSION)
    throw new ApiError(
      400,
      'NoSuchVersion',
      `An invalid or unsupported API version '${version}' was specified.`,
    );
  if (bool(form, 'DryRun') === true)
    throw new ApiError(412, 'DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
  switch (action) {
    case 'DescribeSnapshots':
      return describeSnapshots(store, form, res);
    case 'RegisterImage':
      return registerImage(store, form, res);
    case 'DescribeImages':
      return describeImages(store, form, res);
    case 'EnableImageDeprecation':
      return enableImageDeprecation(store, form, res);
    case 'CreateTags':
      return createTags(store, form, res);
    default:
      throw new ApiError(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
  }
}
